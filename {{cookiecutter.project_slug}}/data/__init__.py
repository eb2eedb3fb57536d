"""Datamodules of this project; configs name them as ``data.<ClassName>``.

``_common.ResearchDataModule`` is the small base class yours may subclass (README: Add your own dataset){% if cookiecutter.task in ['image_classification', 'autoencoder'] %};
``_in_memory`` is the fast path for image sets that fit in memory, ``streaming`` streams those bigger than memory
from chunks sh/optimize_data.py wrote{% endif %}.
"""
{%- if cookiecutter.__dataset in ['mnist', 'fashion_mnist'] %}
from .mnist import FashionMNISTDataModule, MNISTDataModule
{%- else %}
from .{{ cookiecutter.__dataset_module }} import {{ cookiecutter.__dataset_class }}
{%- endif %}
{%- if cookiecutter.task in ['image_classification', 'autoencoder'] %}
from .streaming import StreamingDataModule
{%- endif %}

__all__ = ["{{ cookiecutter.__dataset_class }}"{% if cookiecutter.task in ['image_classification', 'autoencoder'] %}, "StreamingDataModule"{% endif %}{% if cookiecutter.__dataset in ['mnist', 'fashion_mnist'] %}, "{{ 'FashionMNISTDataModule' if cookiecutter.__dataset == 'mnist' else 'MNISTDataModule' }}"{% endif %}]
