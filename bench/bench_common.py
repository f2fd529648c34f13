"""Helpers shared by the benchmark scripts."""
import os


def mpi_environment():
    """The environment for mpirun on this kind of machine: root allowed (CI and fresh
    machines run as root), more ranks than cores allowed."""
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    return env
