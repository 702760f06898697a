"""Pure-core tests: no model is loaded, llama.cpp and torch cannot even be imported here."""
