NAME = "fixture-layer"
