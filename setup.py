"""Installation of ambs: the core needs no MPI, no torch and no scheduler."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
for line in (here / "ambs" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        version["v"] = line.split("=")[1].strip().strip('"')

setup(
    name="ambs",
    version=version["v"],
    description="Asynchronous model-based hyperparameter search on supercomputers and laptops",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["ambs", "ambs.*"]),
    package_data={"ambs": ["templates/*.sh"]},
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "threadpoolctl>=3.1",  # one BLAS thread for the small linear algebra of a proposal
        "ConfigSpace>=1.2,<2",
        "pandas>=2.0",
        "matplotlib>=3.7",  # ambs analyze plot|report|compare|pareto
    ],
    extras_require={
        "mpi": ["mpi4py>=4.0", "mpich"],
        "torch": ["torch>=1.13"],  # torch.load(weights_only=True)
        # Kept so that `pip install 'ambs[analysis]'` still works: matplotlib is a core dependency.
        "analysis": [],
        # Balsam 1 (a Django ORM over PostgreSQL): a release that installs beside
        # everything else; Balsam 2 is a pre-release whose client pins pydantic<2.
        "balsam": ["balsam-flow>=0.5,<0.6"],
        # The torch problems' tests run on the CPU build: the cap keeps the tested
        # 2.13 series, which pip resolves to 2.13.0+cpu where that wheel is offered
        # (a bare "torch" resolves to the newest, CUDA, build from PyPI).
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "ruff", "mpi4py>=4.0", "mpich", "matplotlib>=3.7",
                 "torch>=2.1,<2.14", "balsam-flow>=0.5,<0.6"],
    },
    entry_points={"console_scripts": ["ambs=ambs.__main__:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Environment :: Console",
    ],
)
