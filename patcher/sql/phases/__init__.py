"""Expand / contract / neutral: the classification of SPEC section 11 (``classify``)."""
