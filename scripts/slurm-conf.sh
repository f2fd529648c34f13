# Sourced by scripts/slurm-local.sh and scripts/cluster-local.sh: the slurm.conf settings their
# test clusters share. Choices for containers and VMs without a systemd/cgroup hierarchy of
# their own: proctrack/linuxproc (process tree, not cgroups), task/affinity (binding by
# sched_setaffinity), cons_tres with CR_Core; no accounting daemon (finished jobs stay visible
# to `scontrol show job` for MinJobAge seconds).
slurm_test_settings() {
  cat <<'CONF'
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Scheduling passes every 2 s (default 60 s): a requeued job starts soon after cred_expire.
SchedulerParameters=sched_interval=2,bf_interval=2
SwitchType=switch/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
MailProg=/bin/true
KillWait=30
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
CONF
}
