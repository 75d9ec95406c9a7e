#include "ecu2mqtt/app/option_values.hpp"

#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/net/host_port.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace ecu2mqtt {

long long parse_integer(const std::string& text, long long min, long long max) {
    long long value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || value < min || value > max)
        throw OptionError("expected a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got \"" + text + "\"");
    return value;
}

bool parse_bool(const std::string& text) {
    if (text == "1" || text == "true" || text == "yes" || text == "on")
        return true;
    if (text == "0" || text == "false" || text == "no" || text == "off")
        return false;
    throw OptionError("expected true or false, got \"" + text + "\"");
}

std::string trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return std::string(text.substr(first, last - first + 1));
}

std::vector<std::string> parse_list(const std::string& text) {
    std::vector<std::string> items;
    if (trimmed(text).empty())
        return items;
    std::size_t start = 0;
    for (;;) {
        const auto comma = std::min(text.find(',', start), text.size());
        items.push_back(trimmed(std::string_view(text).substr(start, comma - start)));
        if (items.back().empty())
            throw OptionError("empty item in the list \"" + text + "\"");
        if (comma == text.size())
            return items;
        start = comma + 1;
    }
}

std::vector<std::uint16_t> parse_ports(const std::string& text) {
    std::vector<std::uint16_t> ports;
    for (const auto& item : parse_list(text)) {
        const auto port = static_cast<std::uint16_t>(parse_integer(item, 0, 65535));
        // 0 asks for any free port, so it may appear more than once.
        if (port != 0 && std::find(ports.begin(), ports.end(), port) != ports.end())
            throw OptionError("port " + item + " appears twice in \"" + text + "\"");
        ports.push_back(port);
    }
    if (ports.empty())
        throw OptionError("expected a comma-separated list of ports, got \"" + text + "\"");
    return ports;
}

std::vector<std::string> parse_peer_list(const std::string& text) {
    auto items = parse_list(text);
    for (const auto& item : items) {
        try {
            check_cidr(item);
        } catch (const std::invalid_argument& e) {
            throw OptionError(e.what());
        }
    }
    return items;
}

std::vector<std::string> parse_ecu_ids(const std::string& text) {
    auto items = parse_list(text);
    for (const auto& item : items)
        if (item.size() != 12 || item.find_first_not_of("0123456789") != std::string::npos)
            throw OptionError("expected ECU ids of exactly 12 digits, got \"" + item + "\"");
    return items;
}

std::string parse_ip_address(const std::string& text) {
    if (!is_ip_literal(text))
        throw OptionError("expected an IP address (0.0.0.0, ::, 192.168.1.10), got \"" + text +
                          "\"");
    return text;
}

std::string parse_mqtt_url(const std::string& text) {
    const auto scheme_end = text.find("://");
    const auto scheme = text.substr(0, scheme_end);
    if (scheme_end == std::string::npos || (scheme != "mqtt" && scheme != "mqtts"))
        throw OptionError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got \"" + text +
                          "\"");
    std::string rest = text.substr(scheme_end + 3);
    // The broker's user and password have options of their own; one written into the URL must
    // not be repeated in the error, which goes to the log.
    if (const auto at = rest.find('@'); at != std::string::npos)
        throw OptionError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got \"" + scheme +
                          "://***@" + rest.substr(at + 1) +
                          "\": give the user and password with --mqtt-user and --mqtt-password");
    if (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    try {
        if (rest.find('/') != std::string::npos)
            throw std::invalid_argument("a path is not supported");
        const auto target = parse_host_port(rest);
        if (target.port == std::nullopt && target.host.find(':') != std::string::npos &&
            rest.front() != '[')
            throw std::invalid_argument("an IPv6 broker address goes in brackets: [::1]:1883");
    } catch (const std::invalid_argument& e) {
        throw OptionError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got \"" + text +
                          "\": " + e.what());
    }
    return text;
}

std::string parse_ema_target(const std::string& text) {
    try {
        return host_port_text(parse_host_port(text));
    } catch (const std::invalid_argument& e) {
        throw OptionError("expected HOST[:PORT], got \"" + text + "\": " + e.what());
    }
}

std::string parse_resolver(const std::string& text) {
    HostPort resolver;
    try {
        resolver = parse_host_port(text);
    } catch (const std::invalid_argument& e) {
        throw OptionError("expected IP[:PORT], got \"" + text + "\": " + e.what());
    }
    if (!is_ip_literal(resolver.host))
        throw OptionError("expected IP[:PORT] (the DNS server's address, not its name), got \"" +
                          text + "\"");
    return host_port_text(resolver);
}

std::string parse_topic(const std::string& text) {
    if (text.empty() || text.find_first_of("+#") != std::string::npos)
        throw OptionError("expected a topic without wildcards, got \"" + text + "\"");
    return text;
}

std::string parse_non_empty(const std::string& text) {
    if (trimmed(text).empty())
        throw OptionError("expected a value, got \"" + text + "\"");
    return text;
}

bool ArgumentCursor::next() {
    if (started_)
        ++index_;
    started_ = true;
    inline_value_.reset();
    if (index_ >= args_.size())
        return false;
    name_ = args_[index_];
    if (const auto eq = name_.find('='); name_.starts_with("--") && eq != std::string::npos) {
        inline_value_ = name_.substr(eq + 1);
        name_.resize(eq);
    }
    return true;
}

std::string ArgumentCursor::value(std::string_view value_name) {
    if (inline_value_)
        return *inline_value_;
    if (index_ + 1 >= args_.size())
        throw OptionError(context_ + name_ + " needs a value" +
                          (value_name.empty() ? "" : " (" + std::string(value_name) + ")"));
    return args_[++index_];
}

} // namespace ecu2mqtt
