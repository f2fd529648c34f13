#pragma once
// Checks on the paths a run names, made before anything is opened: an input must be a
// regular file (a FIFO would block the open forever, a device or socket is never an input),
// and two names that reach the same file are told apart from two files.
#include <optional>
#include <string>
#include <vector>

namespace binflow {

/// Rank-local; only stat(2). What is wrong with `path` as an input, as text that follows
/// the path ("is a FIFO, not a regular file", "cannot be reached (File name too long)"), or nothing
/// when it is a regular file (or a directory, if `directory_allowed`). A path that does not exist
/// is a problem only if `missing_is_problem` (readers word that case themselves). IoError when stat
/// fails for a reason that is not the user's (EIO, ENOMEM...).
[[nodiscard]] std::optional<std::string> input_file_problem(const std::string& path,
                                                            bool directory_allowed,
                                                            bool missing_is_problem);

/// Rank-local. Whether `a` and `b` name the same file: by file-system identity
/// (std::filesystem::equivalent) when both exist, else by their absolute, normalised
/// paths with the existing leading directories resolved (so `./x` and `d/../x` match).
[[nodiscard]] bool same_file(const std::string& a, const std::string& b);

/// Rank-local. What identifies the content of an input, one line per file, for the checkpoint
/// fingerprint (docs/framework.md, "Checkpoint"): for a regular file its size, modification
/// time and a checksum of sampled pieces (the first and the last MiB and 16 blocks of 4 KiB
/// spread over the rest); for a directory, every regular file below it (sorted, at most
/// 10000) with its relative path, size, modification time and a checksum of its first 64 KiB.
/// Nothing for a path that does not exist. IoError when a file cannot be read.
[[nodiscard]] std::vector<std::string> input_identity(const std::string& path);

}  // namespace binflow
