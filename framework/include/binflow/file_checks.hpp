#pragma once
// Checks on the paths a run names, made before anything is opened: an input must be a
// regular file (a FIFO would block the open forever, a device or socket is never an input),
// and two names that reach the same file are told apart from two files.
#include <optional>
#include <string>

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

}  // namespace binflow
