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

std::string extension(const std::string& scheduler) {
  if (scheduler == "pbs") return ".pbs";
  if (scheduler == "lsf") return ".lsf";
  return ".sbatch";
}

std::string header_comment(const JobRequest& job) {
  const int ranks = job.nodes * job.ranks_per_node;
  const int per_node = job.ranks_per_node * job.threads_per_rank;
  std::string out = "#!/bin/bash\n";
  out += fmt::format("# binflow job `{}`: {} x {} per node x {} per rank\n", job.command.front(),
                     plural(job.nodes, "node"), plural(job.ranks_per_node, "rank"),
                     plural(job.threads_per_rank, "thread"));
  out += fmt::format(
      "# = {} MPI ranks, using {} of the {} cores of each node. Each rank is bound to\n", ranks,
      per_node, job.cores_per_node);
  out += fmt::format(
      "# {} of its own, and binflow's thread budget runs {} there (OMP_PLACES=cores,\n"
      "# OMP_PROC_BIND=close): no core runs two compute threads.\n",
      plural(job.threads_per_rank, "core"), plural(job.threads_per_rank, "thread"));
  if (job.resumable) {
    out += fmt::format(
        "# Wall time {}; {} s before it the job is signalled: binflow finishes the bins in\n"
        "# flight, flushes {}.ckpt and exits 75, the script requeues the job, and its next\n"
        "# start adds resume=yes and continues where it stopped (docs/cluster.md).\n",
        hms(job.time_seconds), job.signal_lead, job.outfile);
  } else {
    out += fmt::format(
        "# Wall time {}. No outfile, so nothing to checkpoint: the job is not requeued.\n",
        hms(job.time_seconds));
  }
  out += fmt::format("# Written by `binflow submit` (binflow {}).\n", version());
  return out;
}

std::string slurm_directives(const JobRequest& job) {
  std::string d;
  const auto add = [&d](const std::string& option) { d += "#SBATCH " + option + "\n"; };
  add("--job-name=" + shell_quote(job.job_name));
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
  add("--output=" + shell_quote(job.workdir + "/" + job.job_name + "-%j.out"));
  add("--chdir=" + shell_quote(job.workdir));
  return d;
}

std::string pbs_directives(const JobRequest& job) {
  std::string d;
  const auto add = [&d](const std::string& option) { d += "#PBS " + option + "\n"; };
  const int ncpus = job.ranks_per_node * job.threads_per_rank;
  std::string select = fmt::format("select={}:ncpus={}:mpiprocs={}:ompthreads={}", job.nodes, ncpus,
                                   job.ranks_per_node, job.threads_per_rank);
  if (job.mem_per_cpu_mib > 0) select += fmt::format(":mem={}mb", job.mem_per_cpu_mib * ncpus);
  add("-N " + shell_quote(job.job_name));
  add("-l " + select);
  add("-l place=scatter");
  add("-l walltime=" + hms(job.time_seconds));
  if (!job.partition.empty()) add("-q " + shell_quote(job.partition));
  if (!job.account.empty()) add("-A " + shell_quote(job.account));
  add("-j oe");
  add("-o " + shell_quote(job.workdir + "/" + job.job_name + ".out"));
  add("-r y");
  d += fmt::format("# Torque: #PBS -l nodes={}:ppn={} instead of the select and place lines.\n",
                   job.nodes, ncpus);
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
  add("-o " + shell_quote(job.workdir + "/" + job.job_name + "-%J.out"));
  add("-cwd " + shell_quote(job.workdir));
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
  if (job.scheduler == "pbs") hostfile = " --hostfile \"$PBS_NODEFILE\"";
  if (job.scheduler == "lsf") hostfile = " --hostfile \"$LSB_DJOB_HOSTFILE\"";
  return fmt::format(
      "\"${{BINFLOW_MPIRUN:-mpirun}}\" -n {}{} --map-by ppr:{}:node:PE={} --bind-to core \\\n"
      "  -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND \"${{cmd[@]}}\" &\n",
      ranks, hostfile, job.ranks_per_node, job.threads_per_rank);
}

std::string body(const JobRequest& job) {
  const bool slurm = job.scheduler == "slurm";
  const bool pbs = job.scheduler == "pbs";
  std::string b = "set -uo pipefail\n";
  b += fmt::format("cd {} || exit 1\n", shell_quote(job.workdir));
  b += fmt::format("profile=${{BINFLOW_SITE_PROFILE:-{}}}\n", shell_quote(job.profile));
  b += "if [[ -n $profile && -r $profile ]]; then source \"$profile\"; fi\n\n";
  b += "# binflow reads these (they lower its thread budget, never raise it); OpenMP keeps its\n"
       "# threads on the rank's cores, in order.\n";
  b += fmt::format("export OMP_NUM_THREADS={} OMP_PLACES=cores OMP_PROC_BIND=close\n",
                   job.threads_per_rank);
  if (slurm) {
    b += "# Slurm >= 22.05 does not pass --cpus-per-task on to srun; this variable does.\n"
         "export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-" +
         std::to_string(job.threads_per_rank) + "}\n";
  }
  b += "# Open MPI starts as root only when told twice (containers, test clusters).\n"
       "if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 "
       "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi\n\n";
  std::string words;
  for (const std::string& w : job.command) {
    words += ' ';
    words += shell_quote(w);
  }
  b += fmt::format("cmd=({}{})\n", shell_quote(job.binflow), words);
  const std::string restarts = slurm ? "SLURM_RESTART_COUNT" : "BINFLOW_RESTART_COUNT";
  if (job.resumable) {
    b += fmt::format("outfile={}\n", shell_quote(job.outfile));
    b += fmt::format("restarts=${{{}:-0}}\n", restarts);
    b += "# A checkpoint, or a restart after an attempt that may have finished: resume=yes\n"
         "# continues the journal, starts afresh without one, and exits 0 on a complete output.\n"
         "if [[ -e $outfile.ckpt ]] || ((restarts > 0)); then cmd+=(resume=yes); fi\n";
  } else {
    b += "restarts=0\n";
  }
  const std::string job_id =
      slurm ? "${SLURM_JOB_ID:-}" : (pbs ? "${PBS_JOBID:-}" : "${LSB_JOBID:-}");
  b += fmt::format(
      "echo \"binflow-job: job {} start $((restarts + 1)) on $(hostname -s) at $(date -u "
      "+%FT%TZ): ${{cmd[*]}}\"\n\n",
      job_id);
  if (pbs && job.resumable) {
    b += fmt::format(
        "# PBS signals only at the wall time, and kills kill_delay seconds later: too late for\n"
        "# a checkpoint. This timer signals the script {} s before instead.\n"
        "( sleep {} && kill -USR1 $$ ) &\n"
        "timer=$!\n",
        job.signal_lead, std::max<std::int64_t>(1, job.time_seconds - job.signal_lead));
  }
  b += "# The checkpoint signal reaches the launcher as SIGUSR1: srun and mpirun pass it on to\n"
       "# every rank, which finishes its bins in flight, flushes the journal and exits 75 (a\n"
       "# SIGTERM would make srun kill the step and mpirun report 1).\n";
  b += launch_line(job);
  b += "launcher=$!\n";
  b += "trap 'echo \"binflow-job: checkpoint signal, passed on as SIGUSR1\"; kill -USR1 "
       "\"$launcher\" 2>/dev/null' TERM USR1\n";
  b += "while kill -0 \"$launcher\" 2>/dev/null; do wait \"$launcher\"; done\n";
  b += "status=0\nwait \"$launcher\" || status=$?\ntrap - TERM USR1\n";
  if (pbs && job.resumable) b += "pkill -P \"$timer\" 2>/dev/null\nkill \"$timer\" 2>/dev/null\n";
  b += "echo \"binflow-job: binflow exit status $status\"\n";
  if (job.resumable) {
    if (slurm) {
      b += "if ((status == 75 && restarts < ${BINFLOW_MAX_RESTARTS:-10})); then\n"
           "  echo \"binflow-job: checkpointed; requeueing job $SLURM_JOB_ID\"\n"
           "  scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
           "fi\n";
    } else if (pbs) {
      b += fmt::format(
          "if ((status == 75 && restarts < ${{BINFLOW_MAX_RESTARTS:-10}})); then\n"
          "  # PBS Pro's qrerun needs an operator: the job submits itself again.\n"
          "  echo \"binflow-job: checkpointed; resubmitting {}\"\n"
          "  qsub -v BINFLOW_RESTART_COUNT=$((restarts + 1)) {} && exit 0\n"
          "fi\n",
          job.script_path, shell_quote(job.script_path));
    } else {
      b += "# Exit status 75 requeues the job (#BSUB -Q \"75\").\n";
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
    if (scheduler == "pbs" && std::regex_match(t, m, pbs_id)) return m[1];
    if (scheduler == "lsf" && std::regex_match(t, m, lsf_id)) return m[1];
  }
  throw IoError(fmt::format("no job id in the {} answer: {}", scheduler, trim(output)));
}

std::string job_script(const JobRequest& job) {
  std::string directives;
  if (job.scheduler == "slurm") directives = slurm_directives(job);
  if (job.scheduler == "pbs") directives = pbs_directives(job);
  if (job.scheduler == "lsf") directives = lsf_directives(job);
  return header_comment(job) + directives + "\n" + body(job);
}

void SubmitTool::declare(ParameterSet& params) {
  params.add_choice("scheduler", scheduler_, {"slurm", "pbs", "lsf"},
                    "batch system: Slurm (sbatch), PBS Pro (qsub; Torque in the script's "
                    "comment) or LSF (bsub)");
  params.add("nodes", nodes_, "nodes", Range<int>{1, 1000000});
  params.add("ranks_per_node", ranks_per_node_, "MPI ranks on each node", Range<int>{1, 4096});
  params.add("threads_per_rank", threads_per_rank_, "OpenMP threads (cores) of each rank",
             Range<int>{1, 4096});
  params.add("cores_per_node", cores_per_node_,
             "physical cores of one node, to check ranks_per_node x threads_per_rank against; "
             "0 = ask Slurm (sinfo), else this machine's cores",
             Range<int>{0, 1000000});
  params.add("time", time_, "wall-time limit: HH:MM:SS, D-HH:MM:SS or minutes");
  params.add("mem_per_cpu", mem_per_cpu_,
             "memory per core (e.g. 2G, 4000M); empty = the scheduler's default");
  params.add("partition", partition_, "Slurm partition, PBS or LSF queue; empty = default");
  params.add("account", account_, "account (Slurm, PBS) or project (LSF) to charge");
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
  params.add_trailing("TOOL ARGS", command_,
                      "the binflow command line the job runs, e.g. -- lightcurve --inobs obs.h5 "
                      "--outfile lc.h5");
}

void SubmitTool::validate() {
  if (command_.empty()) {
    throw UsageError(
        "submit: give the command line the job runs after --, e.g. "
        "`binflow submit --nodes 2 -- lightcurve --inobs obs.h5 --outfile lc.h5`");
  }
  if (command_.front() == "submit") throw UsageError("submit: a job cannot run binflow submit");
  std::unique_ptr<Tool> tool = registry_.create(command_.front());
  try {
    tool->configure({command_.begin() + 1, command_.end()});
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("-- {}: {}", command_.front(), e.what()));
  }
  outfile_ = tool->standard().outfile;
  resumable_ = tool->uses_bins() && !outfile_.empty();
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
  if (launcher_ == "srun" && scheduler_ != "slurm") {
    throw UsageError(fmt::format("launcher: srun needs scheduler=slurm, not {}", scheduler_));
  }
  if (cores_per_node_ > 0 && ranks_per_node_ * threads_per_rank_ > cores_per_node_) {
    throw UsageError(fmt::format(
        "ranks_per_node x threads_per_rank = {} x {} = {} cores, more than the {} of a node "
        "(cores_per_node)",
        ranks_per_node_, threads_per_rank_, ranks_per_node_ * threads_per_rank_, cores_per_node_));
  }
}

std::pair<int, std::string> SubmitTool::node_cores(int local_cores) const {
  if (cores_per_node_ > 0) return {cores_per_node_, "cores_per_node"};
  if (scheduler_ == "slurm" && on_path("sinfo")) {
    // %z is sockets:cores:threads; the smallest node of the partition bounds the job.
    std::vector<std::string> argv = {"sinfo", "-h", "-o", "%z"};
    if (!partition_.empty()) argv.insert(argv.end(), {"-p", partition_});
    const Captured c = run_command(argv);
    static const std::regex sct(R"((\d+):(\d+):(\d+)\+?)");
    int least = 0;
    std::istringstream lines(c.output);
    std::string line;
    while (c.status == 0 && std::getline(lines, line)) {
      std::smatch m;
      const std::string t = trim(line);
      if (!std::regex_match(t, m, sct)) continue;
      const int cores = std::stoi(m[1]) * std::stoi(m[2]);
      least = least == 0 ? cores : std::min(least, cores);
    }
    if (least > 0) {
      return {least, partition_.empty() ? "Slurm's nodes (sinfo)"
                                        : fmt::format("partition {} (sinfo)", partition_)};
    }
  }
  return {local_cores, "this machine; give cores_per_node for the cluster's nodes"};
}

ToolOutput SubmitTool::execute(RunContext& ctx) {
  const Placement placement = gather_placement(ctx.runtime(), ctx.budget());
  const int local_cores = placement.nodes.empty() ? 1 : placement.nodes.front().cores_available;
  ctx.runtime().comm.agree_on_root([&] {
    const auto [cores, source] = node_cores(local_cores);
    if (ranks_per_node_ * threads_per_rank_ > cores) {
      throw UsageError(fmt::format(
          "ranks_per_node x threads_per_rank = {} x {} = {} cores, more than the {} of a node ({})",
          ranks_per_node_, threads_per_rank_, ranks_per_node_ * threads_per_rank_, cores, source));
    }
    JobRequest job;
    job.scheduler = scheduler_;
    job.nodes = nodes_;
    job.ranks_per_node = ranks_per_node_;
    job.threads_per_rank = threads_per_rank_;
    job.cores_per_node = cores;
    job.time_seconds = time_seconds_;
    job.mem_per_cpu_mib = mem_mib_;
    job.partition = partition_;
    job.account = account_;
    job.job_name = job_name_.empty() ? "binflow-" + command_.front() : job_name_;
    job.signal_lead = lead_seconds_;
    job.launcher = launcher_ == "auto" ? (scheduler_ == "slurm" ? "srun" : "mpirun") : launcher_;
    job.workdir = fs::current_path().string();
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    job.binflow = ec ? std::string("binflow") : self.string();
    job.script_path =
        fs::absolute(script_.empty() ? job.job_name + extension(scheduler_) : script_).string();
    job.profile = profile_.empty() ? std::string() : fs::absolute(profile_).string();
    job.outfile = outfile_;
    job.resumable = resumable_;
    job.command = command_;
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
        scheduler_ == "slurm" ? "sbatch" : (scheduler_ == "pbs" ? "qsub" : "bsub");
    if (!on_path(program)) {
      throw UsageError(
          fmt::format("scheduler: {} is not on the PATH (the script is in {}; "
                      "dry_run=yes prints it without submitting)",
                      program, job.script_path));
    }
    Captured answer;
    if (scheduler_ == "slurm") answer = run_command({"sbatch", "--parsable", job.script_path});
    if (scheduler_ == "pbs") answer = run_command({"qsub", job.script_path});
    if (scheduler_ == "lsf") answer = run_command({"bsub"}, job.script_path);  // bsub < script
    if (answer.status != 0) {
      throw IoError(fmt::format("{} {} failed (exit status {}): {}", program, job.script_path,
                                answer.status, trim(answer.output)));
    }
    const std::string id = job_id_from(scheduler_, answer.output);
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
