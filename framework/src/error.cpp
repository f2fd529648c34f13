#include "binflow/error.hpp"

namespace binflow {

int exit_status_of(const std::exception& e) {
  if (const auto* agreed = dynamic_cast<const AgreedError*>(&e)) return agreed->status();
  if (dynamic_cast<const UsageError*>(&e) != nullptr) return exit_status::usage;
  if (dynamic_cast<const IoError*>(&e) != nullptr) return exit_status::io;
  return exit_status::internal;
}

}  // namespace binflow
