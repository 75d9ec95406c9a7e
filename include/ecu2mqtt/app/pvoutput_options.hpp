// The --pvoutput-* options: their values checked, and what the uploader is given from them.
#pragma once

#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/store/pvoutput_queue.hpp"

#include <map>
#include <string>

namespace ecu2mqtt {

// Each throws OptionError saying what was expected and quoting the value (never the key's).
std::string parse_pvoutput_api_key(const std::string& text);
std::string parse_pvoutput_system_id(const std::string& text);
std::map<std::string, std::string> parse_pvoutput_systems(const std::string& text);
int parse_pvoutput_interval(const std::string& text);
std::string parse_pvoutput_url_option(const std::string& text);

// The options together: a key needs a system and a system needs a key. Throws OptionError
// naming the option.
void check_pvoutput_options(const Options& options);
bool pvoutput_enabled(const Options& options);
PvoutputMapping pvoutput_mapping(const Options& options);

} // namespace ecu2mqtt
