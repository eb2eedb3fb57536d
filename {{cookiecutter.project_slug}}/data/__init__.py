"""Datamodules of this project; configs name them as ``data.<ClassName>``.

``_common.ResearchDataModule`` is the small base class yours may subclass (README: Add your own dataset);
``_in_memory`` is the fast path for image sets that fit in memory.
"""
{%- if cookiecutter.dataset in ['mnist', 'fashion_mnist'] %}
from .mnist import FashionMNISTDataModule, MNISTDataModule
{%- elif cookiecutter.dataset == 'cifar10' %}
from .cifar10 import CIFAR10DataModule
{%- elif cookiecutter.dataset == 'digits' %}
from .digits import DigitsDataModule
{%- else %}
from .imagefolder import ImageFolderDataModule
{%- endif %}

__all__ = ["{{ cookiecutter.__dataset_class }}"{% if cookiecutter.dataset in ['mnist', 'fashion_mnist'] %}, "{{ 'FashionMNISTDataModule' if cookiecutter.dataset == 'mnist' else 'MNISTDataModule' }}"{% endif %}]
