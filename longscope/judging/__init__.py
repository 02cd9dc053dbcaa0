"""The judge: a backend that grades open-ended outputs against checklists, cached and counted apart."""
