"""What a run leaves for people: the model for use, figures, history CSV, tables, and the check against published numbers."""
