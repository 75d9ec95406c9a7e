#include "ecu2mqtt/store/spool.hpp"

#include "ecu2mqtt/store/state_file.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ecu2mqtt {
namespace {

constexpr std::string_view kSuffix = ".json";

std::optional<std::uint64_t> sequence_of(const std::filesystem::path& file) {
    const std::string name = file.filename().string();
    if (name.size() != 20 + kSuffix.size() || !name.ends_with(kSuffix))
        return std::nullopt;
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 20; ++i) {
        if (name[i] < '0' || name[i] > '9')
            return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(name[i] - '0');
    }
    return value;
}

} // namespace

std::filesystem::path Spool::path_of(std::uint64_t sequence) const {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.json", static_cast<unsigned long long>(sequence));
    return directory_ / name;
}

std::vector<std::string> Spool::open() {
    std::vector<std::string> problems;
    index_.clear();
    bytes_ = 0;
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec) {
        problems.push_back("cannot create " + directory_.string() + ": " + ec.message());
        return problems;
    }
    std::vector<Indexed> found;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, ec)) {
        const auto sequence = sequence_of(entry.path());
        if (!sequence) {
            if (entry.path().extension() == ".tmp") // a write cut short by a crash
                std::filesystem::remove(entry.path(), ec);
            continue;
        }
        found.push_back({*sequence, entry.file_size(ec)});
    }
    std::sort(found.begin(), found.end(),
              [](const Indexed& a, const Indexed& b) { return a.sequence < b.sequence; });
    for (const auto& f : found) {
        index_.push_back(f);
        bytes_ += f.bytes;
    }
    next_sequence_ = found.empty() ? 1 : found.back().sequence + 1;
    return problems;
}

std::string Spool::push(const nlohmann::json& reading) {
    const std::uint64_t sequence = next_sequence_;
    const auto path = path_of(sequence);
    if (auto error = write_json_atomically(path, reading); !error.empty())
        return error;
    ++next_sequence_;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    index_.push_back({sequence, ec ? 0 : size});
    bytes_ += index_.back().bytes;
    while (bytes_ > max_bytes_ && index_.size() > 1)
        drop_front();
    return {};
}

void Spool::drop_front() {
    std::error_code ec;
    std::filesystem::remove(path_of(index_.front().sequence), ec);
    bytes_ -= std::min(bytes_, index_.front().bytes);
    index_.pop_front();
    ++dropped_;
}

std::optional<Spool::Entry> Spool::front(std::string* problem) {
    std::vector<std::string> problems;
    auto entry = next_after(0, problems);
    if (problem && !problems.empty())
        *problem = problems.back();
    return entry;
}

std::optional<Spool::Entry> Spool::next_after(std::uint64_t sequence,
                                              std::vector<std::string>& problems) {
    auto it = std::upper_bound(
        index_.begin(), index_.end(), sequence,
        [](std::uint64_t value, const Indexed& indexed) { return value < indexed.sequence; });
    while (it != index_.end()) {
        const StateRead read = read_json_state(path_of(it->sequence));
        if (read.status == StateRead::Status::Ok)
            return Entry{it->sequence, read.value};
        problems.push_back(read.status == StateRead::Status::Missing
                               ? path_of(it->sequence).string() + " vanished"
                               : path_of(it->sequence).string() + " set aside: " + read.error);
        bytes_ -= std::min(bytes_, it->bytes);
        it = index_.erase(it);
    }
    return std::nullopt;
}

std::optional<std::int64_t> Spool::oldest_written() const {
    if (index_.empty())
        return std::nullopt;
    std::error_code ec;
    const auto written = std::filesystem::last_write_time(path_of(index_.front().sequence), ec);
    if (ec)
        return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::file_clock::to_sys(written).time_since_epoch())
        .count();
}

void Spool::pop(std::uint64_t sequence) {
    const auto it = std::find_if(index_.begin(), index_.end(),
                                 [&](const Indexed& i) { return i.sequence == sequence; });
    if (it == index_.end())
        return;
    std::error_code ec;
    std::filesystem::remove(path_of(sequence), ec);
    bytes_ -= std::min(bytes_, it->bytes);
    index_.erase(it);
}

} // namespace ecu2mqtt
