#include "ecu2mqtt/app/recorder.hpp"

#include <algorithm>
#include <boost/beast/core/detail/base64.hpp>
#include <stdexcept>
#include <vector>

namespace ecu2mqtt {
namespace {

bool is_plain_text(std::string_view bytes) {
    for (char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        if (!((u >= 0x20 && u < 0x7f) || c == '\n' || c == '\r' || c == '\t'))
            return false;
    }
    return true;
}

std::string to_base64(std::string_view bytes) {
    namespace b64 = boost::beast::detail::base64;
    std::string out(b64::encoded_size(bytes.size()), '\0');
    out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
    return out;
}

std::string from_base64(const std::string& text) {
    namespace b64 = boost::beast::detail::base64;
    std::string out(b64::decoded_size(text.size()), '\0');
    const auto [written, read] = b64::decode(out.data(), text.data(), text.size());
    // Decoding stops at the '=' padding: only padding may follow.
    if (text.find_first_not_of('=', read) != std::string::npos)
        throw std::invalid_argument("bad base64");
    out.resize(written);
    return out;
}

void put_bytes(nlohmann::json& line, const std::string& key, std::string_view bytes) {
    if (is_plain_text(bytes))
        line[key] = std::string(bytes);
    else
        line[key + "_base64"] = to_base64(bytes);
}

std::optional<std::string> get_bytes(const nlohmann::json& line, const std::string& key) {
    if (line.contains(key) && line[key].is_string())
        return line[key].get<std::string>();
    if (line.contains(key + "_base64"))
        return from_base64(line[key + "_base64"].get<std::string>());
    return std::nullopt;
}

} // namespace

nlohmann::json recording_line(const std::string& time, std::uint16_t port, const std::string& peer,
                              std::string_view message, const std::optional<std::string>& reply) {
    nlohmann::json line{{"time", time}, {"port", port}, {"peer", peer}};
    put_bytes(line, "message", message);
    if (reply)
        put_bytes(line, "reply", *reply);
    else
        line["reply"] = nullptr;
    return line;
}

RecordedMessage parse_recording_line(const std::string& text) {
    try {
        const auto line = nlohmann::json::parse(text);
        RecordedMessage r;
        r.time = line.at("time").get<std::string>();
        r.port = line.at("port").get<std::uint16_t>();
        r.peer = line.value("peer", "");
        const auto message = get_bytes(line, "message");
        if (!message)
            throw std::invalid_argument("no message");
        r.message = *message;
        r.reply = get_bytes(line, "reply");
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("not a recording line: ") + e.what());
    }
}

void FileRecorder::open_day(const std::string& day) {
    out_.close();
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    const auto path = directory_ / ("ecu2mqtt-" + day + ".jsonl");
    out_.clear();
    out_.open(path, std::ios::app);
    if (!out_)
        log_.error("recording_not_written", {{"file", path.string()}});
    open_day_ = day;
    paused_ = false;
    bytes_ = make_room(0);
}

std::uintmax_t FileRecorder::make_room(std::uintmax_t needed) {
    std::error_code ec;
    std::vector<std::pair<std::filesystem::path, std::uintmax_t>> files;
    std::uintmax_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, ec)) {
        const auto name = entry.path().filename().string();
        if (!name.starts_with("ecu2mqtt-") || !name.ends_with(".jsonl"))
            continue;
        const auto size = entry.file_size(ec);
        files.emplace_back(entry.path(), ec ? 0 : size);
        total += ec ? 0 : size;
    }
    std::sort(files.begin(), files.end()); // by name: by day
    const std::string today = "ecu2mqtt-" + open_day_ + ".jsonl";
    for (const auto& [path, size] : files) {
        if (total + needed <= max_bytes_ || path.filename() == today)
            break;
        if (std::filesystem::remove(path, ec)) {
            total -= size;
            log_.info("recording_removed",
                      {{"file", path.string()}, {"reason", "recordings over their size limit"}});
        }
    }
    return total;
}

void FileRecorder::record(const InboundMessage& message, const std::optional<std::string>& reply) {
    const auto now = clock_.now();
    const std::string day = format_iso(date_of(clock_.local(now)));
    if (day != open_day_)
        open_day(day);
    const std::string line = recording_line(clock_.iso_with_offset(now), message.local_port,
                                            message.peer, message.raw, reply)
                                 .dump() +
                             '\n';
    if (bytes_ + line.size() > max_bytes_) {
        bytes_ = make_room(line.size());
        if (bytes_ + line.size() > max_bytes_) {
            if (!paused_)
                log_.warn("recording_paused",
                          {{"day", day},
                           {"limit_bytes", std::to_string(max_bytes_)},
                           {"action", "recording again tomorrow; raise --record-max-mb"}});
            paused_ = true;
            return;
        }
    }
    out_ << line << std::flush;
    bytes_ += line.size();
    if (!out_)
        log_.error("recording_not_written", {{"day", day}});
}

} // namespace ecu2mqtt
