"""Generation backends behind one small Protocol (see base.py). Import a backend module only when chosen:
torch-based backends must not be imported by the worker unless selected."""
