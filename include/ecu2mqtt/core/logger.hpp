// Structured one-line logs (`key=value`) to a stream or a file, safe to call from any thread.
#pragma once

#include <fstream>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

namespace ecu2mqtt {

enum class LogLevel { Debug, Info, Warn, Error };

std::optional<LogLevel> parse_log_level(std::string_view text);
const char* log_level_name(LogLevel level);

struct LogField {
    std::string_view key;
    std::string value;
};

class Logger {
  public:
    Logger(std::ostream& out, LogLevel min_level) : out_(&out), min_level_(min_level) {}
    // Appends to `file`; throws std::runtime_error if it cannot be opened.
    Logger(const std::string& file, LogLevel min_level);

    // Reopens the log file (after log rotation moved it); no-op when logging to a stream.
    void reopen();

    void log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
    // For fields known only at run time.
    void log(LogLevel level, std::string_view event, std::span<const LogField> fields);
    bool enabled(LogLevel level) const { return level >= min_level_; }

    // Also hands every line written to `observer` (e.g. the status page's recent problems).
    // Called with the logger's lock held, from whichever thread logged: it must be quick and
    // must not log.
    using Observer = std::function<void(LogLevel level, std::string_view line)>;
    void set_observer(Observer observer);

    void debug(std::string_view event, std::initializer_list<LogField> fields = {}) {
        log(LogLevel::Debug, event, fields);
    }
    void info(std::string_view event, std::initializer_list<LogField> fields = {}) {
        log(LogLevel::Info, event, fields);
    }
    void warn(std::string_view event, std::initializer_list<LogField> fields = {}) {
        log(LogLevel::Warn, event, fields);
    }
    void error(std::string_view event, std::initializer_list<LogField> fields = {}) {
        log(LogLevel::Error, event, fields);
    }

  private:
    std::mutex mutex_;
    std::ostream* out_;
    std::string file_path_;
    std::ofstream file_;
    LogLevel min_level_;
    Observer observer_;
};

} // namespace ecu2mqtt
