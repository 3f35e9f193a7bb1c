"""A module that only a layer provides (Lambda puts /opt/python on the path)."""


def greet(name):
    return f"hello {name} from the layer"
