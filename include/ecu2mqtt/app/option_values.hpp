// Readers of option values: each takes the text as given (command line, environment or config
// file) and returns the value or throws OptionError saying what was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

// A whole number from `min` to `max`.
long long parse_integer(const std::string& text, long long min, long long max);
// 1/true/yes/on or 0/false/no/off.
bool parse_bool(const std::string& text);
std::string trimmed(std::string_view text);
// Comma-separated, each item trimmed ("a, b" is a and b); an empty text is an empty list, an
// empty item ("a,,b", "a,") a mistake.
std::vector<std::string> parse_list(const std::string& text);
// Distinct ports; 0 (any free port) may repeat.
std::vector<std::uint16_t> parse_ports(const std::string& text);
// Addresses or CIDR ranges.
std::vector<std::string> parse_peer_list(const std::string& text);
// ECU ids of 12 digits.
std::vector<std::string> parse_ecu_ids(const std::string& text);
std::string parse_ip_address(const std::string& text);
// mqtt[s]://HOST[:PORT], with an optional trailing slash, as the publisher reads it.
std::string parse_mqtt_url(const std::string& text);
// HOST[:PORT]; kept in the normalised form (no trailing dot).
std::string parse_ema_target(const std::string& text);
// IP[:PORT] of a DNS server.
std::string parse_resolver(const std::string& text);
// A topic without wildcards.
std::string parse_topic(const std::string& text);
std::string parse_non_empty(const std::string& text);

// One option of a command line, as `--name VALUE` or `--name=VALUE`: the loops over arguments of
// the service and of each subcommand read them alike.
class ArgumentCursor {
  public:
    // `context` prefixes errors ("history: "), empty for the service's own options.
    ArgumentCursor(const std::vector<std::string>& args, std::string context)
        : args_(args), context_(std::move(context)) {}

    // Moves to the next argument; false past the end.
    bool next();
    const std::string& argument() const { return args_[index_]; }
    // The argument's name: up to '=' for `--name=VALUE`.
    const std::string& name() const { return name_; }
    bool has_inline_value() const { return inline_value_.has_value(); }
    const std::string& inline_value() const { return *inline_value_; }
    // The inline value, or the next argument; `value_name` says what is missing otherwise.
    std::string value(std::string_view value_name = {});

  private:
    const std::vector<std::string>& args_;
    std::string context_;
    std::size_t index_ = 0;
    bool started_ = false;
    std::string name_;
    std::optional<std::string> inline_value_;
};

} // namespace ecu2mqtt
