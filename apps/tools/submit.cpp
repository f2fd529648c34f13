#include "tools/submit.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "binflow/error.hpp"

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX

namespace binflow::apps {

namespace {

namespace fs = std::filesystem;

struct Captured {
  int status = -1;     ///< exit status, or -1 if the program could not run or was killed
  std::string output;  ///< stdout and stderr together
};

/// The environment the scheduler command passes on to the job (sbatch --export=ALL, qsub
/// -V): this process's, less what MPI_Init of this singleton and the thread budget added.
/// Left in, PMIX_SERVER_URI* and OMPI_MCA_ess=singleton make an mpirun inside the job fail
/// without a word (seen with Open MPI 4.1 under Slurm 22.05), and *_NUM_THREADS carry this
/// process's budget, not the job's.
std::vector<std::string> job_environment() {
  static constexpr std::array<std::string_view, 6> dropped = {
      "OMP_NUM_THREADS",  "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
      "BLIS_NUM_THREADS", "HFI_NO_BACKTRACE",     "IPATH_NO_BACKTRACE"};
  const auto starts = [](std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
  };
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    const bool mpi_runtime = starts(name, "PMIX_") || starts(name, "ORTE_") ||
                             (starts(name, "OMPI_") && !starts(name, "OMPI_ALLOW_RUN_AS_ROOT") &&
                              (!starts(name, "OMPI_MCA_") || starts(name, "OMPI_MCA_orte_") ||
                               starts(name, "OMPI_MCA_ess") || starts(name, "OMPI_MCA_pmix")));
    if (mpi_runtime || std::find(dropped.begin(), dropped.end(), name) != dropped.end()) continue;
    out.emplace_back(entry);
  }
  return out;
}

/// Runs `argv` (PATH lookup) with stdin from `stdin_path` (empty: inherited) and returns
/// what it printed. A one-shot command on rank 0, after the run's threads are idle: the
/// "nothing forks" rule is about workers, which this is not.
Captured run_command(const std::vector<std::string>& argv, const std::string& stdin_path = "") {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw IoError(fmt::format("pipe: {}", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  if (!stdin_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_path.c_str(), O_RDONLY, 0);
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  std::vector<std::string> environment = job_environment();
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  Captured out;
  if (rc != 0) {
    close(fds[0]);
    out.output = fmt::format("{}: {}", argv[0], std::strerror(rc));
    return out;
  }
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      out.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int wstatus = 0;
  pid_t waited = 0;
  do {
    waited = waitpid(pid, &wstatus, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited == pid && WIFEXITED(wstatus)) out.status = WEXITSTATUS(wstatus);
  return out;
}

bool on_path(const std::string& program) {
  const Captured c = run_command({"sh", "-c", "command -v " + shell_quote(program)});
  return c.status == 0;
}

/// Each Slurm node's specialized cores (CoreSpecCount, from CoreSpecCount or CpuSpecList in
/// slurm.conf): jobs never get them, and sinfo's sockets:cores:threads still counts them.
/// Empty if scontrol cannot say.
std::map<std::string, int> specialized_cores() {
  const Captured c = run_command({"scontrol", "show", "node", "-o"});
  static const std::regex name(R"(\bNodeName=(\S+))");
  static const std::regex spec(R"(\bCoreSpecCount=(\d+))");
  std::map<std::string, int> out;
  std::istringstream lines(c.output);
  std::string line;
  while (c.status == 0 && std::getline(lines, line)) {
    std::smatch n;
    std::smatch k;
    if (std::regex_search(line, n, name) && std::regex_search(line, k, spec)) {
      out[n[1]] = std::stoi(k[1]);
    }
  }
  return out;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::string plural(std::int64_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

std::string hms(std::int64_t seconds) {
  return fmt::format("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

std::string slurm_time(std::int64_t seconds) {
  if (seconds < 86400) return hms(seconds);
  return fmt::format("{}-{}", seconds / 86400, hms(seconds % 86400));
}

bool pbs_like(std::string_view scheduler) { return scheduler == "pbs" || scheduler == "torque"; }

std::string extension(const std::string& scheduler) {
  if (pbs_like(scheduler)) return ".pbs";
  if (scheduler == "lsf") return ".lsf";
  if (scheduler == "local") return ".sh";
  return ".sbatch";
}

/// A word as the script writes it: in a portable script a word with a `$` is shell text
/// the job expands (inside double quotes, so one word); every other word stays as it is.
std::string script_word(const JobRequest& job, const std::string& word) {
  if (job.portable && word.find('$') != std::string::npos) return "\"" + word + "\"";
  return shell_quote(word);
}

/// `text` as comment lines of at most 92 columns, broken between words.
std::string wrapped_comment(std::string_view text) {
  std::istringstream words{std::string(text)};
  std::string out;
  std::string line = "#";
  std::string word;
  while (words >> word) {
    if (line.size() > 1 && line.size() + 1 + word.size() > 92) {
      out += line + "\n";
      line = "#";
    }
    line += " " + word;
  }
  return out + line + "\n";
}

/// `text` as comment lines, line for line.
std::string commented(std::string_view text) {
  std::istringstream lines{std::string(text)};
  std::string out;
  std::string line;
  while (std::getline(lines, line)) out += line.empty() ? "#\n" : "# " + line + "\n";
  return out;
}

std::string header_comment(const JobRequest& job) {
  const int ranks = job.nodes * job.ranks_per_node;
  const int per_node = job.ranks_per_node * job.threads_per_rank;
  const std::string geometry =
      fmt::format("{} x {} per node x {} per rank", plural(job.nodes, "node"),
                  plural(job.ranks_per_node, "rank"), plural(job.threads_per_rank, "thread"));
  std::string out = "#!/bin/bash\n";
  out += wrapped_comment(
      fmt::format("{}: {} = {}{}, using {} of the {} cores of each node. Each rank is bound to {} "
                  "of its own, and binflow's thread budget runs {} there (OMP_PLACES=cores, "
                  "OMP_PROC_BIND=close): no core runs two compute threads.",
                  job.array.empty() ? fmt::format("binflow job `{}`", job.command.front())
                                    : fmt::format("binflow job array `{}`, elements {}, each",
                                                  job.command.front(), job.array),
                  geometry, plural(ranks, "MPI rank"), job.array.empty() ? "" : " per element",
                  per_node, job.cores_per_node, plural(job.threads_per_rank, "core"),
                  plural(job.threads_per_rank, "thread")));
  const std::string ckpt = job.outfile + ".ckpt";
  if (job.scheduler == "local") {
    out += wrapped_comment(
        job.resumable ? fmt::format("Ctrl-C or SIGTERM checkpoints: binflow finishes the bins in "
                                    "flight, flushes {} and exits 75; the same command again "
                                    "adds resume=yes and continues where it stopped.",
                                    ckpt)
                      : std::string("No outfile, so nothing to checkpoint."));
  } else if (job.resumable) {
    const std::int64_t minutes = (job.signal_lead + 59) / 60;
    std::string signal = fmt::format("{} s before it Slurm signals the job (--signal=B:TERM@{})",
                                     job.signal_lead, job.signal_lead);
    std::string again = "the script requeues the job";
    if (pbs_like(job.scheduler)) {
      signal =
          fmt::format("{} s before it (LEAD) a timer in the script signals it", job.signal_lead);
      again = "the script submits itself again";
    }
    if (job.scheduler == "lsf") {
      signal = fmt::format("{} before it LSF signals the job (-wa USR1 -wt {})",
                           plural(minutes, "minute"), minutes);
      again = "LSF requeues the job on that status (-Q)";
    }
    out += wrapped_comment(fmt::format(
        "Wall time {}; {}: binflow finishes the bins in flight, flushes {} and exits 75, {}, "
        "and its next start adds resume=yes and continues where it stopped (docs/cluster.md).",
        hms(job.time_seconds), signal, ckpt, again));
  } else {
    out += wrapped_comment(
        fmt::format("Wall time {}. No outfile, so nothing to checkpoint: the job is not requeued.",
                    hms(job.time_seconds)));
  }
  if (job.portable) {
    out += wrapped_comment(fmt::format(
        "Site specifics (modules, the binflow path BINFLOW, {}) go in site-profile.sh in the "
        "directory the job is submitted from, or in the file BINFLOW_SITE_PROFILE names.",
        job.launcher == "srun" ? "srun's BINFLOW_SRUN_MPI" : "mpirun's BINFLOW_MPIRUN"));
  }
  if (!job.comment.empty()) out += commented(job.comment);
  if (job.portable) {
    out += "# Written by `binflow submit --portable`.\n";
  } else {
    out += fmt::format("# Written by `binflow submit` (binflow {}).\n", version());
  }
  return out;
}

std::string slurm_directives(const JobRequest& job) {
  std::string d;
  const auto add = [&d](const std::string& option) { d += "#SBATCH " + option + "\n"; };
  add("--job-name=" + shell_quote(job.job_name));
  if (!job.array.empty()) add("--array=" + shell_quote(job.array));
  add(fmt::format("--nodes={}", job.nodes));
  add(fmt::format("--ntasks-per-node={}", job.ranks_per_node));
  add(fmt::format("--cpus-per-task={}", job.threads_per_rank));
  add("--time=" + slurm_time(job.time_seconds));
  if (job.mem_per_cpu_mib > 0) add(fmt::format("--mem-per-cpu={}M", job.mem_per_cpu_mib));
  if (!job.partition.empty()) add("--partition=" + shell_quote(job.partition));
  if (!job.account.empty()) add("--account=" + shell_quote(job.account));
  if (job.resumable) {
    add(fmt::format("--signal=B:TERM@{}", job.signal_lead));
    add("--requeue");
  }
  add("--open-mode=append");
  const std::string log = job.array.empty() ? "-%j.out" : "-%A_%a.out";
  if (job.portable) {
    add("--output=%x" + log);  // in the directory sbatch ran in
  } else {
    add("--output=" + shell_quote(job.workdir + "/" + job.job_name + log));
    add("--chdir=" + shell_quote(job.workdir));
  }
  return d;
}

std::string pbs_directives(const JobRequest& job) {
  std::string d;
  const auto add = [&d](const std::string& option) { d += "#PBS " + option + "\n"; };
  const int ncpus = job.ranks_per_node * job.threads_per_rank;
  const bool torque = job.scheduler == "torque";
  add("-N " + shell_quote(job.job_name));
  if (torque) {
    add(fmt::format("-l nodes={}:ppn={}", job.nodes, ncpus));
    if (job.mem_per_cpu_mib > 0) {
      add(fmt::format("-l pmem={}mb", job.mem_per_cpu_mib * job.threads_per_rank));
    }
  } else {
    std::string select = fmt::format("select={}:ncpus={}:mpiprocs={}:ompthreads={}", job.nodes,
                                     ncpus, job.ranks_per_node, job.threads_per_rank);
    if (job.mem_per_cpu_mib > 0) select += fmt::format(":mem={}mb", job.mem_per_cpu_mib * ncpus);
    add("-l " + select);
    add("-l place=scatter");
  }
  add("-l walltime=" + hms(job.time_seconds));
  if (!job.partition.empty()) add("-q " + shell_quote(job.partition));
  if (!job.account.empty()) add("-A " + shell_quote(job.account));
  add("-j oe");
  if (!job.portable) add("-o " + shell_quote(job.workdir + "/" + job.job_name + ".out"));
  add("-r y");
  if (torque) {
    d += "# Torque has no mpiprocs: ppn counts the cores of a node's ranks, and mpirun's\n"
         "# --map-by places the ranks.\n";
  } else {
    d += fmt::format("# Torque: #PBS -l nodes={}:ppn={} instead of the select and place lines.\n",
                     job.nodes, ncpus);
  }
  return d;
}

std::string lsf_directives(const JobRequest& job) {
  std::string d;
  const auto add = [&d](const std::string& option) { d += "#BSUB " + option + "\n"; };
  std::string resources = fmt::format("span[ptile={}] affinity[core({}):distribute=pack]",
                                      job.ranks_per_node, job.threads_per_rank);
  if (job.mem_per_cpu_mib > 0) {
    resources =
        fmt::format("rusage[mem={}MB] ", job.mem_per_cpu_mib * job.threads_per_rank) + resources;
  }
  add("-J " + shell_quote(job.job_name));
  add(fmt::format("-n {}", job.nodes * job.ranks_per_node));
  add("-R \"" + resources + "\"");
  const std::int64_t minutes = (job.time_seconds + 59) / 60;
  add(fmt::format("-W {}:{:02}", minutes / 60, minutes % 60));
  if (!job.partition.empty()) add("-q " + shell_quote(job.partition));
  if (!job.account.empty()) add("-P " + shell_quote(job.account));
  if (job.portable) {
    add("-o " + shell_quote(job.job_name + "-%J.out"));  // in the directory bsub ran in
  } else {
    add("-o " + shell_quote(job.workdir + "/" + job.job_name + "-%J.out"));
    add("-cwd " + shell_quote(job.workdir));
  }
  if (job.resumable) {
    add("-wa USR1");
    add(fmt::format("-wt {}", (job.signal_lead + 59) / 60));
    add("-Q \"75\"");
  }
  return d;
}

std::string launch_line(const JobRequest& job) {
  const int ranks = job.nodes * job.ranks_per_node;
  if (job.launcher == "srun") {
    return "srun --mpi=\"${BINFLOW_SRUN_MPI:-pmix}\" --cpu-bind=cores \"${cmd[@]}\" &\n";
  }
  std::string hostfile;
  if (pbs_like(job.scheduler)) hostfile = " --hostfile \"$PBS_NODEFILE\"";
  if (job.scheduler == "lsf") hostfile = " --hostfile \"$LSB_DJOB_HOSTFILE\"";
  return fmt::format(
      "\"${{BINFLOW_MPIRUN:-mpirun}}\" -n {}{} --map-by ppr:{}:node:PE={} --bind-to core \\\n"
      "  -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND \"${{cmd[@]}}\" &\n",
      ranks, hostfile, job.ranks_per_node, job.threads_per_rank);
}

/// Everything after the directives: where the job runs, its environment, its command line,
/// and the protocol every binflow job follows (docs/cluster.md, "Checkpoint, signal,
/// requeue, resume"): resume=yes when a checkpoint exists or the job restarted; the
/// launcher in the background; the checkpoint signal passed on to it as SIGUSR1; its exit
/// status; on 75 (checkpointed) a requeue, at most BINFLOW_MAX_RESTARTS times.
std::string body(const JobRequest& job) {
  const bool slurm = job.scheduler == "slurm";
  const bool pbs = pbs_like(job.scheduler);
  const bool lsf = job.scheduler == "lsf";
  const bool local = job.scheduler == "local";
  std::string b = "set -uo pipefail\n";
  if (!job.portable) {
    b += fmt::format("cd {} || exit 1\n", shell_quote(job.workdir));
  } else if (pbs) {
    b += "cd \"${PBS_O_WORKDIR:-.}\" || exit 1\n";
  } else if (lsf) {
    b += "cd \"${LS_SUBCWD:-.}\" || exit 1\n";
  }  // sbatch starts a job in the directory it ran in (or its --chdir), and local runs here
  std::string profile = shell_quote(job.profile);
  if (job.portable) {
    profile = !job.profile.empty() ? script_word(job, job.profile)
              : slurm              ? "$SLURM_SUBMIT_DIR/site-profile.sh"
                                   : "site-profile.sh";
  }
  b += fmt::format("profile=${{BINFLOW_SITE_PROFILE:-{}}}\n", profile);
  b += "if [[ -n $profile && -r $profile ]]; then source \"$profile\"; fi\n\n";
  b += "# binflow reads these (they lower its thread budget, never raise it); OpenMP keeps its\n"
       "# threads on the rank's cores, in order.\n";
  const std::string threads =
      slurm ? fmt::format("${{SLURM_CPUS_PER_TASK:-{}}}", job.threads_per_rank)
            : std::to_string(job.threads_per_rank);
  b += fmt::format("export OMP_NUM_THREADS={} OMP_PLACES=cores OMP_PROC_BIND=close\n", threads);
  if (slurm) {
    b += "# Slurm >= 22.05 does not pass --cpus-per-task on to srun; this variable does.\n"
         "export SRUN_CPUS_PER_TASK=" +
         threads + "\n";
  }
  b += "# Open MPI starts as root only when told twice (containers, test clusters).\n"
       "if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 "
       "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi\n\n";
  if (!job.settings.empty()) {
    b += "# Settings; a variable of the same name in the job's environment wins.\n";
    for (const auto& [name, value] : job.settings) {
      const std::string text = value.find('$') != std::string::npos ? value : shell_quote(value);
      b += fmt::format("{}=${{{}:-{}}}\n", name, name, text);
    }
  }
  if (!job.setup.empty()) {
    b += job.setup;
    if (job.setup.back() != '\n') b += '\n';
  }
  if (pbs && job.resumable) {
    const std::string name = fs::path(job.script_path).filename().string();
    b += "# qsub copies the script away: to submit it again after a checkpoint it must be named.\n";
    b += fmt::format("JOBSCRIPT=${{JOBSCRIPT:-{}}}\n",
                     job.portable ? "$PWD/" + shell_quote(name) : shell_quote(job.script_path));
  }
  std::string words;
  for (const std::string& w : job.command) {
    words += ' ';
    words += script_word(job, w);
  }
  b += fmt::format("cmd=({}{})\n",
                   job.portable ? std::string("\"${BINFLOW:-binflow}\"") : shell_quote(job.binflow),
                   words);

  b +=
      "\n# --- the protocol of every binflow job (binflow submit writes it; docs/cluster.md) ---\n";
  const std::string restarts = slurm   ? "${SLURM_RESTART_COUNT:-0}"
                               : local ? "0"
                                       : "${BINFLOW_RESTART_COUNT:-0}";
  b += fmt::format("restarts={}\n", restarts);
  if (job.resumable) {
    b += fmt::format("outfile={}\n", script_word(job, job.outfile));
    b += "# A checkpoint, or a restart after an attempt that may have finished: resume=yes\n"
         "# continues the journal, starts afresh without one, and exits 0 on a complete output.\n"
         "if [[ -e $outfile.ckpt ]] || ((restarts > 0)); then cmd+=(resume=yes); fi\n";
  }
  const std::string job_id = slurm ? "job ${SLURM_JOB_ID:-} "
                             : pbs ? "job ${PBS_JOBID:-} "
                             : lsf ? "job ${LSB_JOBID:-} "
                                   : "";
  b += fmt::format(
      "echo \"binflow-job: {}start $((restarts + 1)) on $(hostname -s) at $(date -u "
      "+%FT%TZ): ${{cmd[*]}}\"\n",
      job_id);
  if (pbs && job.resumable) {
    static constexpr std::string_view timer =
        R"sh(# PBS signals only at the wall time, and kills kill_delay seconds later: too late for
# a checkpoint. This timer signals the script LEAD seconds before the wall time: qstat's
# (qsub's command line may have changed it), else the one asked for here.
LEAD=${{LEAD:-{}}}
seconds={}
walltime=$(qstat -f "${{PBS_JOBID:-}}" 2>/dev/null | sed -n 's/^ *Resource_List.walltime = //p')
if [[ $walltime =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
  seconds=$((10#${{BASH_REMATCH[1]}} * 3600 + 10#${{BASH_REMATCH[2]}} * 60 + 10#${{BASH_REMATCH[3]}}))
fi
(sleep $((seconds > 2 * LEAD ? seconds - LEAD : seconds / 2)) && kill -USR1 $$) &
timer=$!
)sh";
    b += fmt::format(timer, job.signal_lead, job.time_seconds);
  }
  const std::string signals = local ? "INT TERM USR1" : "TERM USR1";
  b += "# The checkpoint signal reaches the launcher as SIGUSR1: srun and mpirun pass it on to\n"
       "# every rank, which finishes its bins in flight, flushes the journal and exits 75 (a\n"
       "# SIGTERM would make srun kill the step and mpirun report 1).\n";
  b += launch_line(job);
  b += "launcher=$!\n";
  b += fmt::format(
      "trap 'echo \"binflow-job: checkpoint signal, passed on as SIGUSR1\"; kill -USR1 "
      "\"$launcher\" 2>/dev/null' {}\n",
      signals);
  b += "while kill -0 \"$launcher\" 2>/dev/null; do wait \"$launcher\"; done\n";
  b += "status=0\nwait \"$launcher\" || status=$?\ntrap - " + signals + "\n";
  if (pbs && job.resumable) b += "pkill -P \"$timer\" 2>/dev/null\nkill \"$timer\" 2>/dev/null\n";
  b += "echo \"binflow-job: binflow exit status $status\"\n";
  if (job.resumable) {
    if (slurm) {
      b += "if ((status == 75 && restarts < ${BINFLOW_MAX_RESTARTS:-10})); then\n"
           "  echo \"binflow-job: checkpointed; requeueing job $SLURM_JOB_ID\"\n"
           "  scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
           "fi\n";
    } else if (pbs) {
      b += "if ((status == 75 && restarts < ${BINFLOW_MAX_RESTARTS:-10})); then\n"
           "  # qrerun needs an operator: the job submits itself again.\n"
           "  echo \"binflow-job: checkpointed; resubmitting $JOBSCRIPT\"\n"
           "  qsub -V -v \"BINFLOW_RESTART_COUNT=$((restarts + 1))\" \"$JOBSCRIPT\" && exit 0\n"
           "fi\n";
    } else if (lsf) {
      b += "# Exit status 75 requeues the job (#BSUB -Q \"75\"); LSF's MAX_JOB_REQUEUE bounds the "
           "loop.\n";
    } else {
      b += "if ((status == 75)); then\n"
           "  echo \"binflow-job: checkpointed; the same command again resumes\" >&2\n"
           "fi\n";
    }
  }
  b += "exit \"$status\"\n";
  return b;
}

}  // namespace

std::string shell_quote(std::string_view word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || std::strchr("_./=:,+@%-", c) != nullptr;
  });
  if (plain) return std::string(word);
  std::string out = "'";
  for (const char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string expand_defaults(std::string_view word,
                            const std::vector<std::pair<std::string, std::string>>& settings) {
  const auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  };
  const auto setting = [&settings](std::string_view name) -> const std::string* {
    for (const auto& [n, value] : settings) {
      if (n == name) return &value;
    }
    return nullptr;
  };
  std::string out;
  std::size_t i = 0;
  while (i < word.size()) {
    if (word[i] != '$' || i + 1 == word.size()) {
      out += word[i++];
      continue;
    }
    if (word[i + 1] != '{') {  // $NAME
      std::size_t end = i + 1;
      while (end < word.size() && name_char(word[end])) ++end;
      const std::string* value = end > i + 1 ? setting(word.substr(i + 1, end - i - 1)) : nullptr;
      if (value != nullptr) {
        out += *value;
        i = end;
      } else {
        out += word[i++];
      }
      continue;
    }
    std::size_t close = i + 1;  // ${...}, braces nested
    for (int depth = 0; close < word.size(); ++close) {
      if (word[close] == '{') ++depth;
      if (word[close] == '}' && --depth == 0) break;
    }
    if (close == word.size()) {  // unbalanced: as written
      out += word.substr(i);
      break;
    }
    const std::string_view inner = word.substr(i + 2, close - i - 2);
    std::size_t name_end = 0;
    while (name_end < inner.size() && name_char(inner[name_end])) ++name_end;
    const std::string_view op = inner.substr(name_end);
    const std::string* value = setting(inner.substr(0, name_end));
    if (name_end > 0 && op.substr(0, 2) == ":-" && (value == nullptr || value->empty())) {
      out += expand_defaults(op.substr(2), settings);
    } else if (value != nullptr && (op.empty() || op.substr(0, 2) == ":-")) {
      out += *value;
    } else if (value != nullptr && op.size() > 1 && op[0] == '%' && op[1] != '%') {
      const std::string suffix = expand_defaults(op.substr(1), settings);
      const bool ends = value->size() >= suffix.size() &&
                        value->compare(value->size() - suffix.size(), suffix.size(), suffix) == 0;
      out += ends ? value->substr(0, value->size() - suffix.size()) : *value;
    } else {
      out += word.substr(i, close - i + 1);
    }
    i = close + 1;
  }
  return out;
}

std::int64_t parse_walltime(std::string_view text) {
  static const std::regex minutes(R"((\d{1,7}))");
  static const std::regex clock(R"((?:(\d{1,4})-)?(\d{1,5}):(\d{1,2}):(\d{1,2}))");
  const std::string s(text);
  std::smatch m;
  std::int64_t seconds = 0;
  if (std::regex_match(s, m, minutes)) {
    seconds = std::stoll(m[1]) * 60;
  } else if (std::regex_match(s, m, clock) && std::stoll(m[3]) < 60 && std::stoll(m[4]) < 60) {
    const std::int64_t days = m[1].matched ? std::stoll(m[1]) : 0;
    seconds = ((days * 24 + std::stoll(m[2])) * 60 + std::stoll(m[3])) * 60 + std::stoll(m[4]);
  } else {
    throw UsageError(fmt::format("time: '{}' is not HH:MM:SS, D-HH:MM:SS or whole minutes", s));
  }
  if (seconds <= 0) throw UsageError(fmt::format("time: '{}' is not a positive time", s));
  return seconds;
}

std::int64_t parse_memory_mib(std::string_view text) {
  static const std::regex memory(R"((\d+(?:\.\d+)?)([kKmMgGtT]?)[iI]?[bB]?)");
  const std::string s(text);
  std::smatch m;
  if (!std::regex_match(s, m, memory)) {
    throw UsageError(fmt::format("mem_per_cpu: '{}' is not a size such as 4000M or 2G", s));
  }
  const double value = std::stod(m[1]);
  const char unit = m[2].length() != 0 ? static_cast<char>(std::toupper(m[2].str()[0])) : 'M';
  const double mib = unit == 'K'   ? value / 1024.0
                     : unit == 'G' ? value * 1024.0
                     : unit == 'T' ? value * 1024.0 * 1024.0
                                   : value;
  if (!(mib > 0.0) || mib > 1e12) {
    throw UsageError(fmt::format("mem_per_cpu: '{}' is not a positive size", s));
  }
  return static_cast<std::int64_t>(std::ceil(mib));
}

std::string job_id_from(std::string_view scheduler, std::string_view output) {
  std::istringstream lines{std::string(output)};
  std::string line;
  static const std::regex slurm_id(R"((\d+)(?:;\S*)?)");
  static const std::regex pbs_id(R"((\d+(?:\[\d*\])?(?:\.\S+)?))");
  static const std::regex lsf_id(R"(Job <(\d+)> is submitted.*)");
  while (std::getline(lines, line)) {
    const std::string t = trim(line);
    std::smatch m;
    if (scheduler == "slurm" && std::regex_match(t, m, slurm_id)) return m[1];
    if (pbs_like(scheduler) && std::regex_match(t, m, pbs_id)) return m[1];
    if (scheduler == "lsf" && std::regex_match(t, m, lsf_id)) return m[1];
  }
  throw IoError(fmt::format("no job id in the {} answer: {}", scheduler, trim(output)));
}

std::string job_script(const JobRequest& job) {
  std::string directives;
  if (job.scheduler == "slurm") directives = slurm_directives(job);
  if (pbs_like(job.scheduler)) directives = pbs_directives(job);
  if (job.scheduler == "lsf") directives = lsf_directives(job);
  return header_comment(job) + directives + (directives.empty() ? "" : "\n") + body(job);
}

void SubmitTool::declare(ParameterSet& params) {
  params.add_choice("scheduler", job_.scheduler, {"slurm", "pbs", "torque", "lsf", "local"},
                    "batch system: Slurm (sbatch), PBS Pro or Torque (qsub), LSF (bsub), or "
                    "local (mpirun on this machine, dry_run only: jobscripts/local/run.sh)");
  params.add("nodes", job_.nodes, "nodes", Range<int>{1, 1000000});
  params.add("ranks_per_node", job_.ranks_per_node, "MPI ranks on each node", Range<int>{1, 4096});
  params.add("threads_per_rank", job_.threads_per_rank, "OpenMP threads (cores) of each rank",
             Range<int>{1, 4096});
  params.add("cores_per_node", cores_per_node_,
             "physical cores of one node, to check ranks_per_node x threads_per_rank against; "
             "0 = ask Slurm (sinfo), else this machine's cores",
             Range<int>{0, 1000000});
  params.add("time", time_, "wall-time limit: HH:MM:SS, D-HH:MM:SS or minutes");
  params.add("mem_per_cpu", mem_per_cpu_,
             "memory per core (e.g. 2G, 4000M); empty = the scheduler's default");
  params.add("partition", job_.partition, "Slurm partition, PBS or LSF queue; empty = default");
  params.add("account", job_.account, "account (Slurm, PBS) or project (LSF) to charge");
  params.add("job_name", job_name_, "job name; empty = binflow-TOOL");
  params.add("signal_lead", signal_lead_,
             "seconds between the checkpoint signal and the wall-time limit; 0 = a tenth of "
             "the time, 60..600 s",
             Range<std::int64_t>{0, std::int64_t{1} << 31});
  params.add_choice("launcher", launcher_, {"auto", "srun", "mpirun"},
                    "how ranks start: auto = srun under Slurm (--mpi=pmix), mpirun under PBS/LSF");
  params.add("profile", profile_,
             "site profile (modules, paths) the job sources if readable; BINFLOW_SITE_PROFILE "
             "in the job's environment wins");
  params.add("script", script_,
             "where to write the job script; empty = JOB_NAME.sbatch|pbs|lsf here");
  params.add("dry_run", dry_run_, "print the job script instead of writing and submitting it");
  params.add("array", job_.array, "Slurm job array indices (e.g. 0-3); empty = one job");
  params.add("comment", job_.comment, "more lines for the script's opening comment");
  params.add("portable", job_.portable,
             "a script for any directory and binflow (as in jobscripts/): it runs where it is "
             "submitted, runs $BINFLOW (default binflow), reads NAME=VALUE words before TOOL as "
             "settings its environment may override, and expands words with a $ (e.g. "
             "'$NAME', '${NAME%.h5}.log')");
  params.add("setup", job_.setup, "shell lines the job runs before it builds its command line");
  params.add_trailing("TOOL ARGS", command_,
                      "the binflow command line the job runs, e.g. -- lightcurve --inobs obs.h5 "
                      "--outfile lc.h5");
}

void SubmitTool::validate() {
  // A portable command line starts with NAME=VALUE settings, and its words may expand
  // them: the tool checks it with every setting at its default; an array expansion
  // such as "${extra[@]}" (words the setup lines choose) is left out of that check.
  settings_.clear();
  job_command_ = command_;
  std::vector<std::pair<std::string, std::string>> defaults;
  std::vector<std::string> checked = command_;
  if (job_.portable) {
    static const std::regex setting(R"(([A-Z_][A-Z0-9_]*)=(.*))");
    static const std::regex array_expansion(R"(\$\{\w+\[@\]\})");
    std::smatch m;
    auto tool_word = job_command_.begin();
    for (; tool_word != job_command_.end() && std::regex_match(*tool_word, m, setting);
         ++tool_word) {
      settings_.emplace_back(m[1], m[2]);
      defaults.emplace_back(m[1], expand_defaults(m[2].str(), defaults));
    }
    job_command_.erase(job_command_.begin(), tool_word);
    checked.clear();
    for (const std::string& w : job_command_) {
      if (!std::regex_match(w, array_expansion)) checked.push_back(expand_defaults(w, defaults));
    }
  }
  if (checked.empty()) {
    throw UsageError(
        "submit: give the command line the job runs after --, e.g. "
        "`binflow submit --nodes 2 -- lightcurve --inobs obs.h5 --outfile lc.h5`");
  }
  if (checked.front() == "submit") throw UsageError("submit: a job cannot run binflow submit");
  std::unique_ptr<Tool> tool = registry_.create(checked.front());
  try {
    tool->configure({checked.begin() + 1, checked.end()});
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("-- {}: {}", checked.front(), e.what()));
  }
  outfile_ = tool->standard().outfile;
  resumable_ = tool->uses_bins() && !outfile_.empty();
  if (job_.portable) {  // the outfile as the job names it: the word that expanded to it
    for (const std::string& w : job_command_) {
      if (w.find('$') != std::string::npos && expand_defaults(w, defaults) == outfile_) {
        outfile_ = w;
        break;
      }
    }
  }
  if (tool->standard().resume) {
    throw UsageError("-- resume: leave it out; the job script adds resume=yes when it restarts");
  }
  time_seconds_ = parse_walltime(time_);
  mem_mib_ = mem_per_cpu_.empty() ? 0 : parse_memory_mib(mem_per_cpu_);
  lead_seconds_ = signal_lead_;
  if (lead_seconds_ == 0) {
    lead_seconds_ = std::min<std::int64_t>(std::clamp<std::int64_t>(time_seconds_ / 10, 60, 600),
                                           time_seconds_ / 2);
  }
  if (lead_seconds_ >= time_seconds_) {
    throw UsageError(fmt::format("signal_lead: {} s is not shorter than the time limit {} ({} s)",
                                 lead_seconds_, time_, time_seconds_));
  }
  if (launcher_ == "srun" && job_.scheduler != "slurm") {
    throw UsageError(fmt::format("launcher: srun needs scheduler=slurm, not {}", job_.scheduler));
  }
  if (!job_.array.empty() && job_.scheduler != "slurm") {
    throw UsageError(fmt::format("array: job arrays need scheduler=slurm, not {}", job_.scheduler));
  }
  if (job_.scheduler == "local" && !dry_run_) {
    throw UsageError(
        "scheduler: local has no queue to submit to; dry_run=yes prints the script "
        "(jobscripts/local/run.sh runs it)");
  }
  if (job_.scheduler == "local" && job_.nodes != 1) {
    throw UsageError(fmt::format("nodes: scheduler=local runs on this machine, not {}", job_.nodes));
  }
  if (cores_per_node_ > 0 && job_.ranks_per_node * job_.threads_per_rank > cores_per_node_) {
    throw UsageError(fmt::format(
        "ranks_per_node x threads_per_rank = {} x {} = {} cores, more than the {} of a node "
        "(cores_per_node)",
        job_.ranks_per_node, job_.threads_per_rank, job_.ranks_per_node * job_.threads_per_rank, cores_per_node_));
  }
}

std::pair<int, std::string> SubmitTool::node_cores(int local_cores) const {
  if (cores_per_node_ > 0) return {cores_per_node_, "cores_per_node"};
  if (job_.scheduler == "slurm" && on_path("sinfo")) {
    // %z is sockets:cores:threads; the smallest node of the partition bounds the job.
    std::vector<std::string> argv = {"sinfo", "-h", "-N", "-o", "%N %z"};
    if (!job_.partition.empty()) argv.insert(argv.end(), {"-p", job_.partition});
    const Captured c = run_command(argv);
    const std::map<std::string, int> reserved = specialized_cores();
    static const std::regex sct(R"((\S+) (\d+):(\d+):(\d+)\+?)");
    int least = 0;
    std::istringstream lines(c.output);
    std::string line;
    while (c.status == 0 && std::getline(lines, line)) {
      std::smatch m;
      const std::string t = trim(line);
      if (!std::regex_match(t, m, sct)) continue;
      const auto spec = reserved.find(m[1]);
      const int spec_cores = spec == reserved.end() ? 0 : spec->second;
      const int cores = std::stoi(m[2]) * std::stoi(m[3]) - spec_cores;
      least = least == 0 ? cores : std::min(least, cores);
    }
    if (least > 0) {
      return {least, job_.partition.empty() ? "Slurm's nodes (sinfo)"
                                        : fmt::format("partition {} (sinfo)", job_.partition)};
    }
  }
  if (job_.scheduler == "local") return {local_cores, "this machine"};
  return {local_cores, "this machine; give cores_per_node for the cluster's nodes"};
}

ToolOutput SubmitTool::execute(RunContext& ctx) {
  const Placement placement = gather_placement(ctx.runtime(), ctx.budget());
  const int local_cores = placement.nodes.empty() ? 1 : placement.nodes.front().cores_available;
  ctx.runtime().comm.agree_on_root([&] {
    const auto [cores, source] = node_cores(local_cores);
    if (job_.ranks_per_node * job_.threads_per_rank > cores) {
      throw UsageError(fmt::format(
          "ranks_per_node x threads_per_rank = {} x {} = {} cores, more than the {} of a node ({})",
          job_.ranks_per_node, job_.threads_per_rank, job_.ranks_per_node * job_.threads_per_rank, cores, source));
    }
    // The parameters bound to job_ are its fields already; the rest is resolved here.
    JobRequest job = job_;
    job.cores_per_node = cores;
    job.time_seconds = time_seconds_;
    job.mem_per_cpu_mib = mem_mib_;
    job.job_name = job_name_.empty() ? "binflow-" + job_command_.front() : job_name_;
    job.signal_lead = lead_seconds_;
    job.launcher = launcher_ == "auto" ? (job_.scheduler == "slurm" ? "srun" : "mpirun") : launcher_;
    job.workdir = fs::current_path().string();
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    job.binflow = ec ? std::string("binflow") : self.string();
    job.script_path =
        fs::absolute(script_.empty() ? job.job_name + extension(job_.scheduler) : script_).string();
    job.profile = profile_.empty() || job_.portable ? profile_ : fs::absolute(profile_).string();
    job.outfile = outfile_;
    job.resumable = resumable_;
    job.command = job_command_;
    job.settings = settings_;
    const std::string text = job_script(job);
    if (dry_run_) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
      return;
    }
    {
      std::ofstream out(job.script_path, std::ios::trunc);
      out << text;
      out.close();
      if (!out) throw IoError(fmt::format("script: cannot write {}", job.script_path));
    }
    fs::permissions(job.script_path, fs::perms::owner_exec | fs::perms::group_exec,
                    fs::perm_options::add, ec);
    const std::string program =
        job_.scheduler == "slurm" ? "sbatch" : (pbs_like(job_.scheduler) ? "qsub" : "bsub");
    if (!on_path(program)) {
      throw UsageError(
          fmt::format("scheduler: {} is not on the PATH (the script is in {}; "
                      "dry_run=yes prints it without submitting)",
                      program, job.script_path));
    }
    Captured answer;
    if (job_.scheduler == "slurm") answer = run_command({"sbatch", "--parsable", job.script_path});
    if (pbs_like(job_.scheduler)) answer = run_command({"qsub", job.script_path});
    if (job_.scheduler == "lsf") answer = run_command({"bsub"}, job.script_path);  // bsub < script
    if (answer.status != 0) {
      throw IoError(fmt::format("{} {} failed (exit status {}): {}", program, job.script_path,
                                answer.status, trim(answer.output)));
    }
    const std::string id = job_id_from(job_.scheduler, answer.output);
    if (standard().chatter >= 2) {
      std::fputs(fmt::format("wrote {}\nsubmitted with {}; the job runs in {}; job id:\n",
                             job.script_path, program, job.workdir)
                     .c_str(),
                 stdout);
    }
    std::fputs((id + "\n").c_str(), stdout);
    std::fflush(stdout);
  });
  ToolOutput out;
  out.has_results = false;
  return out;
}

}  // namespace binflow::apps
