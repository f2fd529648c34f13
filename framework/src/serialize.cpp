#include "serialize.hpp"

#include <array>
#include <cstddef>

#include "binflow/error.hpp"

namespace binflow::detail {

std::string ByteReader::get_string() {
  const auto size = get<std::uint64_t>();
  need(size);
  std::string text(in_.substr(pos_, size));
  pos_ += size;
  return text;
}

void ByteReader::need(std::size_t bytes) const {
  if (in_.size() - pos_ < bytes) throw IoError("binary record is truncated");
}

void put_row(ByteWriter& w, const Row& row) {
  w.put<std::uint64_t>(row.size());
  for (const Cell& cell : row) {
    w.put<std::uint8_t>(static_cast<std::uint8_t>(cell.index()));
    if (const auto* d = std::get_if<double>(&cell)) {
      w.put(*d);
    } else if (const auto* i = std::get_if<std::int64_t>(&cell)) {
      w.put(*i);
    } else {
      w.put_string(std::get<std::string>(cell));
    }
  }
}

Row get_row(ByteReader& r) {
  const auto size = r.get<std::uint64_t>();
  Row row;
  row.reserve(size);
  for (std::uint64_t k = 0; k < size; ++k) {
    switch (r.get<std::uint8_t>()) {
      case 0:
        row.emplace_back(r.get<double>());
        break;
      case 1:
        row.emplace_back(r.get<std::int64_t>());
        break;
      case 2:
        row.emplace_back(r.get_string());
        break;
      default:
        throw IoError("binary record holds an unknown cell type");
    }
  }
  return row;
}

namespace {

// BinStats travels in its in-memory layout (get<BinStats> reads it back, and journals
// written before stay readable), but copied member by member into zeroed bytes: copying
// the whole struct also carried its 15 padding bytes, uninitialised stack memory, into
// checkpoints and MPI messages (Valgrind memcheck: "write(buf) points to uninitialised
// byte(s)" from Checkpoint::flush_if_due, docs/checking.md).
void put_stats(ByteWriter& w, const BinStats& s) {
  static_assert(sizeof(BinStats) == 72 && std::is_standard_layout_v<BinStats>,
                "BinStats changed: copy every member below");
  std::array<char, sizeof(BinStats)> bytes{};
  const auto member = [&bytes](std::size_t offset, const auto& value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
  };
  member(offsetof(BinStats, index), s.index);
  member(offsetof(BinStats, rank), s.rank);
  member(offsetof(BinStats, start), s.start);
  member(offsetof(BinStats, end), s.end);
  member(offsetof(BinStats, wall), s.wall);
  member(offsetof(BinStats, cpu), s.cpu);
  member(offsetof(BinStats, threads), s.threads);
  member(offsetof(BinStats, peak_rss_kib), s.peak_rss_kib);
  member(offsetof(BinStats, resumed), s.resumed);
  w.put(bytes);
}

}  // namespace

void put_completed(ByteWriter& w, const CompletedBin& bin) {
  w.put_string(bin.map);
  w.put(bin.position);
  w.put_string(bin.status);
  w.put_string(bin.message);
  put_row(w, bin.row);
  w.put_string(bin.log);
  put_stats(w, bin.stats);
  w.put<std::uint8_t>(bin.bad_input ? 1 : 0);
}

CompletedBin get_completed(ByteReader& r) {
  CompletedBin bin;
  bin.map = r.get_string();
  bin.position = r.get<std::int64_t>();
  bin.status = r.get_string();
  bin.message = r.get_string();
  bin.row = get_row(r);
  bin.log = r.get_string();
  bin.stats = r.get<BinStats>();
  bin.bad_input = r.get<std::uint8_t>() != 0;
  return bin;
}

std::uint64_t checksum(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace binflow::detail
