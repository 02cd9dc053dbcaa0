"""The HTML report of a run, the comparison of several runs, and the CSV/JSON exports written beside them."""
