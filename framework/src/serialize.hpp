#pragma once
// Private: the byte encoding of completed bins, shared by the executor's messages and
// the checkpoint journal. Native byte order: both ends are the same binary on
// machines of one architecture (a checkpoint is not an archive format).
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "binflow/checkpoint.hpp"
#include "binflow/table.hpp"

namespace binflow::detail {

class ByteWriter {
public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void put(const T& value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    out_.append(bytes, sizeof(T));
  }
  void put_string(std::string_view text) {
    put<std::uint64_t>(text.size());
    out_.append(text);
  }

private:
  std::string& out_;
};

/// Reads what ByteWriter wrote; throws IoError("... truncated") past the end.
class ByteReader {
public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  template <class T>
  requires std::is_trivially_copyable_v<T> T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string get_string();
  [[nodiscard]] bool done() const { return pos_ == in_.size(); }

private:
  void need(std::size_t bytes) const;
  std::string_view in_;
  std::size_t pos_ = 0;
};

void put_row(ByteWriter& w, const Row& row);
Row get_row(ByteReader& r);
void put_completed(ByteWriter& w, const CompletedBin& bin);
CompletedBin get_completed(ByteReader& r);

/// FNV-1a 64-bit, to detect torn or corrupt journal records.
std::uint64_t checksum(std::string_view bytes);

}  // namespace binflow::detail
