"""Datamodules of this project; configs name them as ``data.<ClassName>``."""
from ._common import DatasetNotFoundError
{%- if cookiecutter.dataset in ['mnist', 'fashion_mnist'] %}
from .mnist import FashionMNISTDataModule, MNISTDataModule
{%- elif cookiecutter.dataset == 'cifar10' %}
from .cifar10 import CIFAR10DataModule
{%- elif cookiecutter.dataset == 'digits' %}
from .digits import DigitsDataModule
{%- else %}
from .imagefolder import ImageFolderDataModule
{%- endif %}

__all__ = ["DatasetNotFoundError", "{{ cookiecutter.__dataset_class }}"{% if cookiecutter.dataset in ['mnist', 'fashion_mnist'] %}, "{{ 'FashionMNISTDataModule' if cookiecutter.dataset == 'mnist' else 'MNISTDataModule' }}"{% endif %}]
