#include "tools/info.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

namespace binflow::apps {

namespace {

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + '"';
}

std::string json_rank(const RankPlacement& r) {
  return fmt::format(R"({{"host": {}, "rank": {}, "local_rank": {}, "cpuset": {}, "threads": {}, )"
                     R"("cpuset_cores": {}}})",
                     json_string(r.host), r.rank, r.local_rank, json_string(r.cpuset), r.threads,
                     r.cpuset_cores);
}

std::string json_node(const NodePlacement& n) {
  return fmt::format(R"({{"host": {}, "ranks": {}, "threads": {}, "cores_available": {}}})",
                     json_string(n.host), n.ranks, n.threads, n.cores_available);
}

/// Oversubscribed nodes first, then the ranks' budget warnings.
std::vector<std::string> all_warnings(const Placement& placement) {
  std::vector<std::string> out = placement.oversubscription_warnings();
  for (std::string& line : placement.rank_warnings()) out.push_back(std::move(line));
  return out;
}

std::string plural(int n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

/// "2 ranks x 1 thread" or, when the node's ranks differ, "3 ranks x 1-2 threads".
std::string node_geometry(const Placement& placement, const NodePlacement& node) {
  int least = 0;
  int most = 0;
  for (const RankPlacement& r : placement.ranks) {
    if (r.host != node.host) continue;
    least = least == 0 ? r.threads : std::min(least, r.threads);
    most = std::max(most, r.threads);
  }
  const std::string ranks = plural(node.ranks, "rank");
  if (least == most) return fmt::format("{} x {}", ranks, plural(most, "thread"));
  return fmt::format("{} x {}-{} threads", ranks, least, most);
}

std::string rank_table(const std::vector<RankPlacement>& ranks) {
  std::size_t host = 4;
  std::size_t cpuset = 6;
  for (const RankPlacement& r : ranks) {
    host = std::max(host, r.host.size());
    cpuset = std::max(cpuset, r.cpuset.size());
  }
  std::string out = fmt::format("{:>5}  {:<{}}  {:>10}  {:<{}}  {:>7}  {:>12}\n", "rank", "host",
                                host, "local rank", "cpuset", cpuset, "threads", "cpuset cores");
  for (const RankPlacement& r : ranks) {
    out += fmt::format("{:>5}  {:<{}}  {:>10}  {:<{}}  {:>7}  {:>12}\n", r.rank, r.host, host,
                       r.local_rank, r.cpuset, cpuset, r.threads, r.cpuset_cores);
  }
  return out;
}

}  // namespace

void InfoTool::declare(ParameterSet& params) {
  params.add("json", json_, "print one JSON document (ranks, nodes, warnings) instead of tables");
}

std::string InfoTool::to_json(const Placement& placement) {
  std::vector<std::string> ranks;
  ranks.reserve(placement.ranks.size());
  for (const RankPlacement& r : placement.ranks) ranks.push_back(json_rank(r));
  std::vector<std::string> nodes;
  nodes.reserve(placement.nodes.size());
  for (const NodePlacement& n : placement.nodes) nodes.push_back(json_node(n));
  std::vector<std::string> warnings;
  for (const std::string& w : all_warnings(placement)) warnings.push_back(json_string(w));
  return fmt::format("{{\"ranks\": [\n  {}\n], \"nodes\": [\n  {}\n], \"warnings\": [{}]}}\n",
                     fmt::join(ranks, ",\n  "), fmt::join(nodes, ",\n  "),
                     fmt::join(warnings, ", "));
}

std::string InfoTool::to_text(const Placement& placement) {
  std::string out = rank_table(placement.ranks);
  for (const NodePlacement& n : placement.nodes) {
    out +=
        fmt::format("node {}: {} = {} used / {} available\n", n.host, node_geometry(placement, n),
                    plural(n.threads, "core"), plural(n.cores_available, "core"));
  }
  for (const std::string& w : all_warnings(placement)) out += fmt::format("warning: {}\n", w);
  return out;
}

ToolOutput InfoTool::execute(RunContext& ctx) {
  const Placement placement = gather_placement(ctx.runtime(), ctx.budget());
  if (ctx.is_root()) {
    const std::string text = json_ ? to_json(placement) : to_text(placement);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  ToolOutput out;
  out.has_results = false;
  return out;
}

}  // namespace binflow::apps
