"""The paper's reproduction: its tables and figures, computed from data and models."""
