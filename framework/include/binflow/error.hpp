#pragma once
// Exception types say what the caller can do about a failure, and the process exit
// statuses that the driver maps them to (the README's table of exit statuses).
#include <stdexcept>
#include <string>

namespace binflow {

/// Base of all binflow errors; the message is one line a user understands.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Bad parameter or bad file content: the user fixes the input.
class UsageError : public Error {
public:
  using Error::Error;
};

/// The file system, MPI or HDF5 failed.
class IoError : public Error {
public:
  using Error::Error;
};

/// A bug in binflow.
class InternalError : public Error {
public:
  using Error::Error;
};

/// An error every rank of a run throws together (see Communicator::agree_on_root and bad
/// input found inside a bin): the driver reports it once, without MPI_Abort.
class AgreedError : public Error {
public:
  AgreedError(int status, const std::string& what) : Error(what), status_(status) {}
  [[nodiscard]] int status() const { return status_; }

private:
  int status_;
};

/// Process exit statuses of every binflow tool.
namespace exit_status {
inline constexpr int ok = 0;
inline constexpr int bins_failed = 1;  ///< the run finished, one or more bins failed
inline constexpr int usage = 2;        ///< bad parameter or input, nothing was written
inline constexpr int io = 3;           ///< I/O, MPI or HDF5 failure
inline constexpr int internal = 4;     ///< a bug
inline constexpr int interrupted =
    75;  ///< SIGTERM/SIGUSR1: checkpoint flushed, rerun with --resume (EX_TEMPFAIL)
}  // namespace exit_status

/// Exit status for an exception: UsageError 2, IoError 3, AgreedError its own, else 4.
int exit_status_of(const std::exception& e);

}  // namespace binflow
