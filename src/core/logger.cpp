#include "ecu2mqtt/core/logger.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <stdexcept>

namespace ecu2mqtt {
namespace {

std::string utc_now_iso() {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

bool needs_quotes(std::string_view value) {
    if (value.empty())
        return true;
    for (char c : value)
        if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20)
            return true;
    return false;
}

void append_value(std::string& line, std::string_view value) {
    if (!needs_quotes(value)) {
        line += value;
        return;
    }
    line += '"';
    for (char c : value) {
        if (c == '"' || c == '\\') {
            line += '\\';
            line += c;
        } else if (c == '\n') {
            line += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
            line += hex;
        } else {
            line += c;
        }
    }
    line += '"';
}

} // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) {
    if (text == "debug")
        return LogLevel::Debug;
    if (text == "info")
        return LogLevel::Info;
    if (text == "warn" || text == "warning")
        return LogLevel::Warn;
    if (text == "error")
        return LogLevel::Error;
    return std::nullopt;
}

const char* log_level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}

Logger::Logger(const std::string& file, LogLevel min_level)
    : out_(&file_), file_path_(file), file_(file, std::ios::app), min_level_(min_level) {
    if (!file_)
        throw std::runtime_error("cannot open log file \"" + file + "\"");
}

void Logger::reopen() {
    if (file_path_.empty())
        return;
    std::lock_guard lock(mutex_);
    file_.close();
    file_.clear();
    file_.open(file_path_, std::ios::app);
    // Logs must not vanish because rotation left an unwritable path: stderr until the next try.
    out_ = file_ ? static_cast<std::ostream*>(&file_) : &std::cerr;
    if (!file_)
        std::cerr << utc_now_iso() << " level=error event=log_file_not_reopened file=\""
                  << file_path_ << "\" action=\"logging to stderr until the next SIGHUP\"\n";
}

void Logger::log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
    log(level, event, std::span<const LogField>(fields.begin(), fields.size()));
}

void Logger::log(LogLevel level, std::string_view event, std::span<const LogField> fields) {
    if (!enabled(level))
        return;
    std::string line = utc_now_iso();
    line += " level=";
    line += log_level_name(level);
    line += " event=";
    line += event;
    for (const auto& field : fields) {
        line += ' ';
        line += field.key;
        line += '=';
        append_value(line, field.value);
    }
    line += '\n';
    std::lock_guard lock(mutex_);
    *out_ << line << std::flush;
    if (observer_)
        observer_(level, line);
}

void Logger::set_observer(Observer observer) {
    std::lock_guard lock(mutex_);
    observer_ = std::move(observer);
}

} // namespace ecu2mqtt
