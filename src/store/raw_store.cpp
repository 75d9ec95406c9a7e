#include "ecu2mqtt/store/raw_store.hpp"

#include "ecu2mqtt/store/state_file.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace ecu2mqtt {

RawMessageStore::RawMessageStore(std::filesystem::path directory, std::size_t max_files,
                                 std::uintmax_t max_bytes)
    : directory_(std::move(directory)), max_files_(std::max<std::size_t>(max_files, 1)),
      max_bytes_(max_bytes) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, ec)) {
        if (entry.path().extension() != ".json")
            continue;
        files_.emplace_back(entry.path(), entry.file_size(ec));
        bytes_ += files_.back().second;
    }
    std::sort(files_.begin(), files_.end());
    if (!files_.empty()) // names start with a 12-digit counter
        next_ = std::strtoull(files_.back().first.filename().string().c_str(), nullptr, 10) + 1;
}

void RawMessageStore::make_room(std::uintmax_t incoming) {
    std::error_code ec;
    while (!files_.empty() && (files_.size() + 1 > max_files_ || bytes_ + incoming > max_bytes_)) {
        std::filesystem::remove(files_.front().first, ec);
        bytes_ -= std::min(bytes_, files_.front().second);
        files_.erase(files_.begin());
    }
}

RawMessageStore::Kept RawMessageStore::keep(const nlohmann::json& line, const std::string& ecu_id,
                                            const std::string& why) {
    auto record = line;
    record["ecu"] = ecu_id;
    record["why"] = why;
    const auto size = record.dump(2).size() + 1; // as written to the file
    if (size > max_bytes_)
        return {{}, "message larger than the store's limit"};
    make_room(size);
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    // The id came off the network: only letters and digits go into a file name.
    std::string tag = ecu_id.empty() ? "unknown" : ecu_id.substr(0, 20);
    for (auto& c : tag)
        if (!std::isalnum(static_cast<unsigned char>(c)))
            c = '_';
    char name[64];
    std::snprintf(name, sizeof name, "%012llu-%s.json", static_cast<unsigned long long>(next_),
                  tag.c_str());
    const auto path = directory_ / name;
    if (auto error = write_json_atomically(path, record); !error.empty())
        return {{}, error};
    ++next_;
    files_.emplace_back(path, size);
    bytes_ += size;
    return {path, {}};
}

} // namespace ecu2mqtt
