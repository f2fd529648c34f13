#pragma once
// `binflow submit`: a batch job script from resources and a binflow command line, like
// dask-jobqueue's job_script() but for MPI jobs. It checks that ranks x threads fits the
// nodes, prints the script (dry_run) or writes and submits it with sbatch, qsub or bsub,
// and prints the job id as its last line. Every script checkpoints on the wall-time
// signal, requeues itself on exit status 75 and resumes with resume=yes (docs/cluster.md).
// job_script() is the one home of that run / signal / requeue protocol: the ready-made
// scripts in jobscripts/ are its output (portable=yes, written by jobscripts/generate.sh),
// and jobscripts/local/run.sh runs its output for scheduler=local.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "binflow/tool.hpp"

namespace binflow::apps {

/// A job in scheduler-neutral terms, everything resolved (absolute paths, seconds, MiB).
struct JobRequest {
  std::string scheduler = "slurm";  ///< slurm | pbs | torque | lsf | local (mpirun, no queue)
  int nodes = 1;
  int ranks_per_node = 1;
  int threads_per_rank = 1;
  int cores_per_node = 0;  ///< what the geometry was checked against (comment only)
  std::int64_t time_seconds = 3600;
  std::int64_t mem_per_cpu_mib = 0;  ///< 0: the scheduler's default
  std::string partition;             ///< queue for PBS and LSF
  std::string account;               ///< project for LSF
  std::string job_name;
  std::int64_t signal_lead = 300;    ///< seconds between the checkpoint signal and the time limit
  std::string launcher;              ///< srun | mpirun
  std::string workdir;               ///< the job runs here
  std::string binflow;               ///< executable the job runs
  std::string script_path;           ///< where the script is written (PBS resubmits it)
  std::string profile;               ///< site profile sourced by the job if readable ("" = none)
  std::string outfile;               ///< the run's outfile ("" = nothing to resume)
  bool resumable = false;            ///< the tool maps bins into outfile: requeue and resume
  std::vector<std::string> command;  ///< TOOL ARGS...
  std::string array;                 ///< Slurm job array indices, e.g. 0-3 ("" = one job)
  std::string comment;               ///< more lines for the opening comment
  /// A script for any directory and any binflow: it runs where it is submitted, runs
  /// $BINFLOW (default binflow), finds site-profile.sh there, reads `settings` from its
  /// environment, and words of `command`, `outfile` and `profile` with a `$` are shell
  /// text the job expands (inside double quotes).
  bool portable = false;
  std::vector<std::pair<std::string, std::string>> settings;  ///< NAME, default (portable)
  std::string setup;  ///< shell lines run before the command line is built
};

/// The job script. Pure: the same request gives the same text.
[[nodiscard]] std::string job_script(const JobRequest& job);

/// `MM`, `HH:MM:SS` or `D-HH:MM:SS` in seconds; UsageError naming `time` otherwise.
[[nodiscard]] std::int64_t parse_walltime(std::string_view text);
/// `4000`, `4000M`, `2G`, `512K`, `1T` (binary units, default M) in MiB, rounded up;
/// UsageError naming `mem_per_cpu` otherwise.
[[nodiscard]] std::int64_t parse_memory_mib(std::string_view text);
/// `word` as the job's bash expands it when every setting has its default value: $NAME,
/// ${NAME}, ${NAME%SUFFIX} of a setting and ${NAME:-WORD} are replaced; other expansions
/// (variables of the setup lines) stay as written. What `binflow submit` checks a portable
/// command line with.
[[nodiscard]] std::string expand_defaults(
    std::string_view word, const std::vector<std::pair<std::string, std::string>>& settings);
/// The job id in what sbatch --parsable, qsub or bsub printed; IoError if there is none.
[[nodiscard]] std::string job_id_from(std::string_view scheduler, std::string_view output);
/// A word as the shell reads it back unchanged (single quotes only where needed).
[[nodiscard]] std::string shell_quote(std::string_view word);

class SubmitTool final : public Tool {
public:
  /// `registry` (which must outlive the tool) checks the job's command line before the
  /// job waits in a queue.
  static constexpr ToolInfo info{
      "submit",
      "write a Slurm, PBS, Torque or LSF job script for a binflow run (or a local one), check its "
      "geometry and submit it"};
  explicit SubmitTool(const ToolRegistry& registry) : Tool(info), registry_(registry) {}
  /// Runs no bins and writes no output file of its own.
  [[nodiscard]] bool uses_bins() const override { return false; }
  [[nodiscard]] bool writes_outfile() const override { return false; }

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm (the placement); rank 0 writes and submits.
  ToolOutput execute(RunContext& ctx) override;

private:
  /// Cores per node to check against: cores_per_node, else Slurm's nodes (sinfo, less their
  /// specialized cores), else `local_cores` (this machine); with where the number came from.
  [[nodiscard]] std::pair<int, std::string> node_cores(int local_cores) const;

  const ToolRegistry& registry_;
  /// The job as the parameters give it: scheduler, nodes, ranks_per_node, threads_per_rank,
  /// partition, account, array, comment, portable and setup are bound to its fields (their
  /// defaults are JobRequest's); execute() fills in what is resolved at submission.
  JobRequest job_;
  int cores_per_node_ = 0;
  std::string time_ = "01:00:00";
  std::string mem_per_cpu_;
  std::string job_name_;
  std::int64_t signal_lead_ = 0;
  std::string launcher_ = "auto";
  std::string profile_;
  std::string script_;
  bool dry_run_ = false;
  std::vector<std::string> command_;
  // Resolved by validate().
  std::int64_t time_seconds_ = 0;
  std::int64_t mem_mib_ = 0;
  std::int64_t lead_seconds_ = 0;
  std::string outfile_;
  bool resumable_ = false;
  std::vector<std::pair<std::string, std::string>> settings_;  ///< NAME=VALUE words before TOOL
  std::vector<std::string> job_command_;                       ///< TOOL ARGS
};

}  // namespace binflow::apps
