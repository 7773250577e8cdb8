# Conversion targets (owned by the conversion pipeline).

convert: $(STAMP) ## Build the demo models that are missing from model_repository/
	$(PY) -m conversion demo
