# Site profile of the binflow job scripts: sourced by every script in jobscripts/slurm/
# (and by scripts from `binflow submit --profile FILE`) before anything runs. Keep the
# site-specific lines here, not in the job scripts. A job finds it as $BINFLOW_SITE_PROFILE
# if set (sbatch passes the submitting shell's environment on), else as site-profile.sh in
# the directory sbatch ran in. Everything below is an example; as shipped it changes nothing.

# Modules that provide MPI, HDF5 and binflow:
#   module load openmpi/4.1 hdf5/1.14-mpi binflow
# Or a binflow build of your own:
#   export BINFLOW=$HOME/binflow/build/bin/binflow

# srun's PMI plugin for your MPI (`srun --mpi=list` shows the choices): pmix for Open MPI
# 4/5 built with PMIx (Debian, most sites), pmi2 for MPICH and Intel MPI.
#   export BINFLOW_SRUN_MPI=pmix

# How many times a job may requeue itself after a checkpoint (default 10).
#   export BINFLOW_MAX_RESTARTS=10

# Network or file-system tuning, e.g. keep HDF5 from locking on a parallel file system:
#   export HDF5_USE_FILE_LOCKING=FALSE
