"""The AWS adapters: the Lambda handler and its payload, the fleet summary function."""
