"""LightningModules of this project; configs name them as ``model.<ClassName>``."""
from ._utils import load_network
from .{{ cookiecutter.__model_module }} import {{ cookiecutter.__model_class }}

__all__ = ["{{ cookiecutter.__model_class }}", "load_network"]
