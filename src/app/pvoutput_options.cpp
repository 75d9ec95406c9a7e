#include "ecu2mqtt/app/pvoutput_options.hpp"

#include "ecu2mqtt/net/pvoutput_client.hpp"

#include <stdexcept>

namespace ecu2mqtt {
namespace {

bool all_digits(const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string::npos)
        return {};
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// PVOutput numbers its systems from 1.
bool system_id_text(const std::string& text) {
    return all_digits(text) && text.size() <= 10 &&
           text.find_first_not_of('0') != std::string::npos;
}

} // namespace

std::string parse_pvoutput_api_key(const std::string& text) {
    // It goes into a request header as it is; the message never repeats it.
    if (text.empty())
        throw OptionError("expected the API key PVOutput shows under Settings, got an empty value");
    for (const char c : text)
        if (c <= ' ' || c > '~')
            throw OptionError("expected the API key PVOutput shows under Settings (letters and "
                              "digits), got a value of " +
                              std::to_string(text.size()) +
                              " characters with spaces or control characters (not shown)");
    return text;
}

std::string parse_pvoutput_system_id(const std::string& text) {
    if (!system_id_text(text))
        throw OptionError("expected the PVOutput system id (a number from 1), got \"" + text +
                          "\"");
    return text;
}

std::map<std::string, std::string> parse_pvoutput_systems(const std::string& text) {
    std::map<std::string, std::string> systems;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = std::min(text.find(',', start), text.size());
        const auto item = trim(text.substr(start, comma - start));
        const auto eq = item.find('=');
        const auto ecu = trim(item.substr(0, eq));
        const auto system = eq == std::string::npos ? std::string() : trim(item.substr(eq + 1));
        if (ecu.size() != 12 || !all_digits(ecu) || !system_id_text(system))
            throw OptionError("expected ECU=SYSTEM pairs (a 12-digit ECU id, a PVOutput system "
                              "id), comma-separated, got \"" +
                              item + "\" in \"" + text + "\"");
        if (!systems.emplace(ecu, system).second)
            throw OptionError("ECU " + ecu + " appears twice in \"" + text + "\"");
        start = comma + 1;
    }
    return systems;
}

int parse_pvoutput_interval(const std::string& text) {
    if (text != "5" && text != "10" && text != "15")
        throw OptionError("expected 5, 10 or 15 (minutes, the system's status interval on "
                          "PVOutput), got \"" +
                          text + "\"");
    return std::stoi(text);
}

std::string parse_pvoutput_url_option(const std::string& text) {
    try {
        parse_pvoutput_url(text);
    } catch (const std::invalid_argument& e) {
        throw OptionError("expected https://HOST[:PORT][/PATH], got \"" + text + "\": " + e.what());
    }
    return text;
}

bool pvoutput_enabled(const Options& options) {
    return !options.pvoutput_api_key.empty();
}

void check_pvoutput_options(const Options& options) {
    const bool systems = !options.pvoutput_system_id.empty() || !options.pvoutput_systems.empty();
    if (pvoutput_enabled(options) && !systems)
        throw OptionError("--pvoutput-api-key: also give --pvoutput-system-id (or "
                          "--pvoutput-systems ECU=SYSTEM,...)");
    if (!pvoutput_enabled(options) && systems)
        throw OptionError(std::string(options.pvoutput_system_id.empty() ? "--pvoutput-systems"
                                                                         : "--pvoutput-system-id") +
                          ": also give --pvoutput-api-key");
}

PvoutputMapping pvoutput_mapping(const Options& options) {
    PvoutputMapping mapping;
    mapping.system_of = options.pvoutput_systems;
    if (!options.pvoutput_system_id.empty())
        mapping.system_of["*"] = options.pvoutput_system_id;
    mapping.interval_min = options.pvoutput_interval;
    return mapping;
}

} // namespace ecu2mqtt
