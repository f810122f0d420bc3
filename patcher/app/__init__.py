"""The commands as plain functions (both adapters call them), configuration, the result."""
