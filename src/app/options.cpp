#include "ecu2mqtt/app/options.hpp"

#include "ecu2mqtt/app/option_values.hpp"
#include "ecu2mqtt/app/poll_options.hpp"
#include "ecu2mqtt/app/pvoutput_options.hpp"
#include "subcommand_options.hpp"

#include "ecu2mqtt/http/http_server.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ecu2mqtt {
namespace {

struct OptionSpec {
    std::string_view flag; // "--listen"; a flag without a value when `value_name` is empty
    std::string_view env;  // "ECU2MQTT_LISTEN"
    std::string_view json; // key in the config file
    std::string_view value_name;
    std::string_view help;
    std::function<void(Options&, const std::string&)> apply;
};

std::string describe_source(const OptionSpec& spec, std::string_view source) {
    if (source == "env")
        return std::string(spec.env);
    if (source == "config")
        return "\"" + std::string(spec.json) + "\" in the config file";
    return std::string(spec.flag);
}

const std::vector<OptionSpec>& option_specs() {
    static const std::vector<OptionSpec> specs{
        {"--listen", "ECU2MQTT_LISTEN", "listen", "ADDR",
         "IP address to accept ECU connections on (default 0.0.0.0: all IPv4 interfaces; :: for "
         "IPv6 and IPv4)",
         [](Options& o, const std::string& v) { o.listen_address = parse_ip_address(v); }},
        {"--ports", "ECU2MQTT_PORTS", "ports", "LIST",
         "comma-separated TCP ports the ECU uploads to, without duplicates (default "
         "8995,8996,8997; 0 picks a free port)",
         [](Options& o, const std::string& v) { o.ports = parse_ports(v); }},
        {"--max-message-bytes", "ECU2MQTT_MAX_MESSAGE_BYTES", "max_message_bytes", "N",
         "largest message accepted; a connection sending more is closed (default 65536)",
         [](Options& o, const std::string& v) {
             o.max_message_bytes = static_cast<std::size_t>(parse_integer(v, 128, 16 << 20));
         }},
        {"--idle-timeout", "ECU2MQTT_IDLE_TIMEOUT", "idle_timeout", "SECONDS",
         "close a connection that sends nothing for this long (default 30)",
         [](Options& o, const std::string& v) {
             o.idle_timeout = std::chrono::seconds(parse_integer(v, 1, 3600));
         }},
        {"--max-connections", "ECU2MQTT_MAX_CONNECTIONS", "max_connections", "N",
         "connections open at once; more are closed at once (default 64)",
         [](Options& o, const std::string& v) {
             o.max_connections = static_cast<std::size_t>(parse_integer(v, 1, 100000));
         }},
        {"--max-connection-age", "ECU2MQTT_MAX_CONNECTION_AGE", "max_connection_age", "SECONDS",
         "close any connection open this long, however active (default 120)",
         [](Options& o, const std::string& v) {
             o.max_connection_age = std::chrono::seconds(parse_integer(v, 1, 86400));
         }},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "LIST",
         "only accept connections from these addresses or CIDR ranges, e.g. 192.168.1.0/24 "
         "(default: any)",
         [](Options& o, const std::string& v) { o.allow_peers = parse_peer_list(v); }},
        {"--allow-ecus", "ECU2MQTT_ALLOW_ECUS", "allow_ecus", "LIST",
         "only accept messages from these ECU ids, 12 digits each (default: any)",
         [](Options& o, const std::string& v) { o.allow_ecus = parse_ecu_ids(v); }},
        {"--log-level", "ECU2MQTT_LOG_LEVEL", "log_level", "LEVEL",
         "debug, info, warn or error (default info)",
         [](Options& o, const std::string& v) {
             const auto level = parse_log_level(v);
             if (!level)
                 throw OptionError("expected debug, info, warn or error, got \"" + v + "\"");
             o.log_level = *level;
         }},
        {"--log-file", "ECU2MQTT_LOG_FILE", "log_file", "FILE",
         "append logs to FILE instead of stderr; reopened on SIGHUP (for log rotation)",
         [](Options& o, const std::string& v) { o.log_file = parse_non_empty(v); }},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "URL",
         "broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (default mqtt://localhost:1883)",
         [](Options& o, const std::string& v) { o.mqtt_url = parse_mqtt_url(v); }},
        {"--mqtt-user", "ECU2MQTT_MQTT_USER", "mqtt_user", "NAME", "broker user name",
         [](Options& o, const std::string& v) { o.mqtt_user = v; }},
        {"--mqtt-password", "ECU2MQTT_MQTT_PASSWORD", "mqtt_password", "SECRET",
         "broker password (prefer the environment variable; never logged)",
         [](Options& o, const std::string& v) { o.mqtt_password = v; }},
        {"--mqtt-client-id", "ECU2MQTT_MQTT_CLIENT_ID", "mqtt_client_id", "ID",
         "MQTT client id (default ecu2mqtt)",
         [](Options& o, const std::string& v) { o.mqtt_client_id = parse_non_empty(v); }},
        {"--mqtt-ca-file", "ECU2MQTT_MQTT_CA_FILE", "mqtt_ca_file", "FILE",
         "CA certificate(s) to verify an mqtts:// broker (default: the system's)",
         [](Options& o, const std::string& v) {
             o.mqtt_ca_file = parse_non_empty(v);
             // Read at every connection attempt: a wrong path would only show as a failed
             // connection, again and again.
             std::error_code ec;
             if (std::filesystem::is_directory(o.mqtt_ca_file, ec))
                 throw OptionError("\"" + v + "\" is a folder, not a CA file");
             if (!std::ifstream(o.mqtt_ca_file))
                 throw OptionError("cannot read \"" + v + "\": " + std::strerror(errno));
         }},
        {"--base-topic", "ECU2MQTT_BASE_TOPIC", "base_topic", "TOPIC",
         "prefix of every state topic (default ecu2mqtt)",
         [](Options& o, const std::string& v) { o.base_topic = parse_topic(v); }},
        {"--discovery-prefix", "ECU2MQTT_DISCOVERY_PREFIX", "discovery_prefix", "TOPIC",
         "Home Assistant discovery prefix (default homeassistant)",
         [](Options& o, const std::string& v) { o.discovery_prefix = parse_topic(v); }},
        {"--no-discovery", "ECU2MQTT_DISCOVERY", "discovery", "",
         "do not publish Home Assistant discovery (env/config: discovery=false)",
         [](Options& o, const std::string& v) { o.discovery = parse_bool(v); }},
        {"--publish-raw", "ECU2MQTT_PUBLISH_RAW", "publish_raw", "",
         "also publish every raw message on <base>/<ecu_id>/raw",
         [](Options& o, const std::string& v) { o.publish_raw = parse_bool(v); }},
        {"--ecu-timeout", "ECU2MQTT_ECU_TIMEOUT", "ecu_timeout", "SECONDS",
         "an ECU silent this long is marked offline (default 900)",
         [](Options& o, const std::string& v) {
             o.ecu_timeout = std::chrono::seconds(parse_integer(v, 1, 7 * 86400));
         }},
        {"--no-backfill", "ECU2MQTT_BACKFILL", "backfill", "",
         "answer every upload as received, even one that could not be kept (env/config: "
         "backfill=false); by default such an upload is answered with the last one kept, so the "
         "ECU sends it again",
         [](Options& o, const std::string& v) { o.backfill = parse_bool(v); }},
        {"--spool-max-mb", "ECU2MQTT_SPOOL_MAX_MB", "spool_max_mb", "N",
         "readings kept on disk while the broker is away, in MiB; the oldest go first (default "
         "64, weeks of uploads)",
         [](Options& o, const std::string& v) {
             o.spool_max_mb = static_cast<std::size_t>(parse_integer(v, 1, 1 << 20));
         }},
        {"--history-days", "ECU2MQTT_HISTORY_DAYS", "history_days", "N",
         "days of history kept in the state directory's database (power every five minutes, "
         "energy per day; see `ecu2mqtt history`); older days are pruned hourly (default 400)",
         [](Options& o, const std::string& v) {
             o.history_days = static_cast<int>(parse_integer(v, 1, 36500));
         }},
        {"--max-ecus", "ECU2MQTT_MAX_ECUS", "max_ecus", "N",
         "ECUs tracked and published at most; an ECU with 3 readings kept is never evicted for "
         "a new id, and uploads that find no room are answered, kept raw, logged and not "
         "published (default 16)",
         [](Options& o, const std::string& v) {
             o.max_ecus = static_cast<std::size_t>(parse_integer(v, 1, 100000));
         }},
        {"--max-inverters-per-ecu", "ECU2MQTT_MAX_INVERTERS_PER_ECU", "max_inverters_per_ecu", "N",
         "inverters tracked per ECU at most; more are left out and logged (default 128)",
         [](Options& o, const std::string& v) {
             o.max_inverters_per_ecu = static_cast<std::size_t>(parse_integer(v, 1, 10000));
         }},
        {"--forget-inverters-after", "ECU2MQTT_FORGET_INVERTERS_AFTER", "forget_inverters_after",
         "DAYS",
         "forget an inverter its ECU has not reported for this long: its Home Assistant device, "
         "state and availability are removed (default 30)",
         [](Options& o, const std::string& v) {
             o.forget_inverters_after = std::chrono::days(parse_integer(v, 1, 3650));
         }},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "HOST[:PORT]",
         "full proxy: also send every ECU message to the real EMA (by default on the port the ECU "
         "used) and relay its reply; the fake reply when EMA does not answer in time. A name that "
         "resolves to this host is refused unless --ema-resolver is given; one trailing dot is "
         "dropped",
         [](Options& o, const std::string& v) { o.forward_to_ema = parse_ema_target(v); }},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "IP[:PORT]",
         "DNS server to resolve the EMA name with (the local DNS points it at this service): an "
         "address, e.g. 1.1.1.1 or [2606:4700:4700::1111]:53",
         [](Options& o, const std::string& v) { o.ema_resolver = parse_resolver(v); }},
        {"--ema-timeout", "ECU2MQTT_EMA_TIMEOUT", "ema_timeout", "SECONDS",
         "longest wait for EMA before the fake reply is sent (default 5; decimals allowed)",
         [](Options& o, const std::string& v) {
             double seconds = 0;
             try {
                 std::size_t used = 0;
                 seconds = std::stod(v, &used);
                 if (used != v.size())
                     seconds = -1;
             } catch (const std::exception&) {
                 seconds = -1;
             }
             if (seconds < 0.05 || seconds > 60)
                 throw OptionError("expected seconds from 0.05 to 60, got \"" + v + "\"");
             o.ema_timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
         }},
        {"--block-firmware", "ECU2MQTT_BLOCK_FIRMWARE", "block_firmware", "",
         "full proxy: never relay an EMA reply other than the plain acknowledgement (how an update "
         "would arrive); send the fake reply instead. Such replies are always logged",
         [](Options& o, const std::string& v) { o.block_firmware = parse_bool(v); }},
        {"--poll-ecus", "ECU2MQTT_POLL_ECUS", "poll_ecus", "LIST",
         "also ask the ECUs on their local port 8899 for signal levels, firmware and time zone "
         "(read-only): auto (the address each ECU uploads from) or ADDR[:PORT],... (default port "
         "8899); off by default",
         [](Options& o, const std::string& v) { o.poll_ecus = parse_poll_ecus_option(v); }},
        {"--poll-interval", "ECU2MQTT_POLL_INTERVAL", "poll_interval", "SECONDS",
         "seconds between polls of one ECU (default 300, at least 60)",
         [](Options& o, const std::string& v) {
             o.poll_interval = std::chrono::seconds(parse_integer(v, 60, 86400));
         }},
        {"--poll-timeout", "ECU2MQTT_POLL_TIMEOUT", "poll_timeout", "SECONDS",
         "longest wait for each step of a poll: sending, the whole reply; connecting at most 3 s "
         "(default 10)",
         [](Options& o, const std::string& v) {
             o.poll_timeout = std::chrono::seconds(parse_integer(v, 1, 60));
         }},
        {"--gap-expiry", "ECU2MQTT_GAP_EXPIRY", "gap_expiry", "HOURS",
         "stop asking the ECU to re-send a reading that could not be kept after this long (default "
         "48)",
         [](Options& o, const std::string& v) {
             o.gap_expiry = std::chrono::hours(parse_integer(v, 1, 24 * 365));
         }},
        {"--record", "ECU2MQTT_RECORD", "record", "DIR",
         "keep every message with its port, peer, time and reply in DIR, one JSON Lines file a day "
         "(for `ecu2mqtt replay`)",
         [](Options& o, const std::string& v) { o.record_dir = parse_non_empty(v); }},
        {"--record-max-mb", "ECU2MQTT_RECORD_MAX_MB", "record_max_mb", "N",
         "recordings take at most this many MiB; the oldest days are deleted first (default 512)",
         [](Options& o, const std::string& v) {
             o.record_max_mb = static_cast<std::size_t>(parse_integer(v, 1, 1 << 20));
         }},
        {"--state-dir", "ECU2MQTT_STATE_DIR", "state_dir", "DIR",
         "where daily energy and known devices are kept across restarts (default "
         "$HOME/.local/state/ecu2mqtt)",
         [](Options& o, const std::string& v) { o.state_dir = parse_non_empty(v); }},
        {"--http-listen", "ECU2MQTT_HTTP_LISTEN", "http_listen", "ADDR:PORT",
         "serve the status page, /metrics and /api/status here (default 127.0.0.1:8099; "
         "0.0.0.0:8099 for every IPv4 interface, [::]:8099 for IPv6 too)",
         [](Options& o, const std::string& v) {
             try {
                 std::tie(o.http_address, o.http_port) = parse_listen_endpoint(v);
             } catch (const std::invalid_argument& e) {
                 throw OptionError(e.what());
             }
         }},
        {"--no-http", "ECU2MQTT_HTTP", "http", "",
         "no status page, /metrics or /api/status (env/config: http=false)",
         [](Options& o, const std::string& v) { o.http = parse_bool(v); }},
        {"--http-allow-peers", "ECU2MQTT_HTTP_ALLOW_PEERS", "http_allow_peers", "LIST",
         "only answer HTTP from these addresses (default: any; the add-on admits only the "
         "Supervisor's ingress proxy, 172.30.32.2)",
         [](Options& o, const std::string& v) {
             o.http_allow_peers = parse_list(v);
             for (const auto& peer : o.http_allow_peers)
                 if (peer.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos)
                     throw OptionError("expected IP addresses, got \"" + peer + "\"");
         }},
        {"--http-timeout", "ECU2MQTT_HTTP_TIMEOUT", "http_timeout", "SECONDS",
         "longest an HTTP request may take to be answered; it must arrive whole within 3 s, "
         "or this if shorter (default 10)",
         [](Options& o, const std::string& v) {
             o.http_timeout = std::chrono::seconds(parse_integer(v, 1, 600));
         }},
        {"--dns-check-name", "ECU2MQTT_DNS_CHECK_NAME", "dns_check_name", "NAME",
         "name the status page checks resolves to this host (default ecu.apsystemsema.com)",
         [](Options& o, const std::string& v) {
             if (!is_dns_name(v))
                 throw OptionError("expected a host name, got \"" + v + "\"");
             o.dns_check_name = v;
         }},
        {"--advertised-address", "ECU2MQTT_ADVERTISED_ADDRESS", "advertised_address", "LIST",
         "the addresses ECUs reach this service at, for the DNS check (default: this host's "
         "own; in a container give the host's LAN address; the add-on asks the Supervisor)",
         [](Options& o, const std::string& v) {
             o.advertised_addresses.clear();
             for (const auto& item : parse_list(v)) {
                 const auto address = canonical_unicast_address(item);
                 if (!address)
                     throw OptionError("expected IP addresses an ECU can connect to, got \"" +
                                       item + "\"");
                 o.advertised_addresses.push_back(*address);
             }
         }},
        {"--pvoutput-api-key", "ECU2MQTT_PVOUTPUT_API_KEY", "pvoutput_api_key", "KEY",
         "upload to PVOutput with this API key (prefer the environment; never logged or shown)",
         [](Options& o, const std::string& v) { o.pvoutput_api_key = parse_pvoutput_api_key(v); }},
        {"--pvoutput-system-id", "ECU2MQTT_PVOUTPUT_SYSTEM_ID", "pvoutput_system_id", "ID",
         "the PVOutput system every ECU feeds (several ECUs: their sum)",
         [](Options& o, const std::string& v) {
             o.pvoutput_system_id = parse_pvoutput_system_id(v);
         }},
        {"--pvoutput-systems", "ECU2MQTT_PVOUTPUT_SYSTEMS", "pvoutput_systems", "ECU=ID,...",
         "the PVOutput system of each ECU (takes precedence over --pvoutput-system-id)",
         [](Options& o, const std::string& v) { o.pvoutput_systems = parse_pvoutput_systems(v); }},
        {"--pvoutput-interval", "ECU2MQTT_PVOUTPUT_INTERVAL", "pvoutput_interval", "MINUTES",
         "the systems' status interval on PVOutput: 5, 10 or 15 (default 5)",
         [](Options& o, const std::string& v) {
             o.pvoutput_interval = parse_pvoutput_interval(v);
         }},
        {"--pvoutput-url", "ECU2MQTT_PVOUTPUT_URL", "pvoutput_url", "URL",
         "PVOutput or a compatible server (default https://pvoutput.org)",
         [](Options& o, const std::string& v) { o.pvoutput_url = parse_pvoutput_url_option(v); }},
        {"--pvoutput-donor", "ECU2MQTT_PVOUTPUT_DONOR", "pvoutput_donor", "",
         "the key is in PVOutput's donation mode: 100 statuses a batch, 90 days back",
         [](Options& o, const std::string& v) { o.pvoutput_donor = parse_bool(v); }},
    };
    return specs;
}

// Flags without a value set a boolean; "--no-x" sets it false, others true.
std::string flag_value(const OptionSpec& spec) {
    return spec.flag.starts_with("--no-") ? "false" : "true";
}

void apply(const OptionSpec& spec, Options& options, const std::string& value,
           std::string_view source) {
    try {
        spec.apply(options, value);
    } catch (const OptionError& e) {
        throw OptionError(describe_source(spec, source) + ": " + e.what());
    }
}

// A config value as the text the command line would carry; nullopt for a type no option takes.
std::optional<std::string> json_to_option_text(const nlohmann::json& value) {
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_boolean())
        return value.get<bool>() ? "true" : "false";
    if (value.is_number_integer())
        return std::to_string(value.get<long long>());
    if (value.is_number_float()) // "ema_timeout": 0.5
        return value.dump();
    if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) {
            const auto text = item.is_array() ? std::nullopt : json_to_option_text(item);
            if (!text)
                return std::nullopt;
            joined += (joined.empty() ? "" : ",") + *text;
        }
        return joined;
    }
    return std::nullopt;
}

void apply_config_file(const std::string& path, Options& options) {
    std::ifstream in(path);
    if (!in)
        throw OptionError("--config: cannot open \"" + path + "\"");
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw OptionError("--config: \"" + path + "\" is not valid JSON: " + e.what());
    }
    if (!config.is_object())
        throw OptionError("--config: \"" + path + "\" must hold a JSON object");
    for (const auto& [key, value] : config.items()) {
        const OptionSpec* match = nullptr;
        for (const auto& spec : option_specs())
            if (spec.json == key)
                match = &spec;
        if (!match)
            throw OptionError("--config: unknown key \"" + key + "\" in \"" + path + "\"");
        const auto text = json_to_option_text(value);
        if (!text)
            throw OptionError(describe_source(*match, "config") + ": unsupported value " +
                              value.dump());
        apply(*match, options, *text, "config");
    }
}

} // namespace

std::string default_state_dir(const std::map<std::string, std::string>& environment) {
    if (const auto it = environment.find("STATE_DIRECTORY");
        it != environment.end() && !it->second.empty())
        return it->second;
    if (const auto it = environment.find("HOME"); it != environment.end() && !it->second.empty())
        return it->second + "/.local/state/ecu2mqtt";
    return "ecu2mqtt-state";
}

CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& environment) {
    CommandLine result;
    if (args.size() == 1 && args[0] == "--addon") {
        result.command = Command::Addon; // everything else comes from the add-on's options
        return result;
    }
    if (!args.empty() && args[0] == "replay")
        return parse_replay(args);
    if (!args.empty() && args[0] == "history")
        return parse_history(args, environment);
    if (!args.empty() && args[0] == "decode")
        return parse_decode(args);

    // Read the whole command line first: it names the config file, which, like the environment,
    // is applied before the command line so that the command line wins.
    struct Given {
        const OptionSpec* spec;
        std::string value;
    };
    std::vector<Given> given;
    std::optional<std::string> config_path;
    if (const auto it = environment.find("ECU2MQTT_CONFIG"); it != environment.end())
        config_path = it->second;
    ArgumentCursor cursor(args, "");
    while (cursor.next()) {
        const std::string& arg = cursor.argument();
        if (arg == "--help" || arg == "-h") {
            result.command = Command::Help;
            return result;
        }
        if (arg == "--version") {
            result.command = Command::Version;
            return result;
        }
        if (arg == "--healthcheck") {
            result.command = Command::Healthcheck;
            continue; // the state directory may still follow
        }
        const std::string& name = cursor.name();
        if (name == "--config") {
            config_path = cursor.value("FILE");
            if (config_path->empty())
                throw OptionError("--config: expected a file name, got \"\"");
            continue;
        }
        const auto match = std::find_if(option_specs().begin(), option_specs().end(),
                                        [&](const OptionSpec& spec) { return spec.flag == name; });
        if (match == option_specs().end())
            throw OptionError("unknown option \"" + arg + "\" (see --help)");
        if (match->value_name.empty()) {
            if (cursor.has_inline_value())
                throw OptionError(std::string(match->flag) + " takes no value, got \"" +
                                  cursor.inline_value() + "\"");
            given.push_back({&*match, flag_value(*match)});
            continue;
        }
        given.push_back({&*match, cursor.value(match->value_name)});
    }

    if (config_path && !config_path->empty())
        apply_config_file(*config_path, result.options);
    for (const auto& spec : option_specs())
        if (const auto it = environment.find(std::string(spec.env)); it != environment.end())
            apply(spec, result.options, it->second, "env");
    for (const auto& [spec, value] : given)
        apply(*spec, result.options, value, "cli");
    check_pvoutput_options(result.options);
    if (result.options.state_dir.empty())
        result.options.state_dir = default_state_dir(environment);
    return result;
}

std::string help_text() {
    std::string text =
        "Usage: ecu2mqtt [OPTIONS]            run the service\n"
        "       ecu2mqtt decode [FILE...]     decode captured messages (stdin without FILE) to "
        "JSON Lines\n"
        "       ecu2mqtt replay [--to HOST] [--port P] [--speed X] FILE...\n"
        "                                     re-send a --record recording to a running service "
        "(speed 1:\n"
        "                                     original pace, 60: a minute a second, 0: no pauses)\n"
        "       ecu2mqtt history [--state-dir DIR] [--ecu ID] [--from DATE] [--to DATE] [--curve]\n"
        "                                     the kept history as CSV on stdout: energy per ECU "
        "day,\n"
        "                                     or the five-minute power curve (options below);\n"
        "                                     --pvoutput: the PVOutput queue and what was sent\n"
        "\n"
        "Stands in for the APsystems EMA cloud: answers the ECU on its upload ports, decodes\n"
        "every upload and publishes it over MQTT with Home Assistant discovery.\n"
        "\n"
        "Options (each also as --option=VALUE, from the environment variable shown, or a key of "
        "the\n--config file; the command line wins over the environment, which wins over the file; "
        "list\nitems are comma-separated and trimmed; a bad value stops the start with exit "
        "status 2):\n";
    constexpr std::size_t kIndent = 30, kWidth = 100;
    const auto add_row = [&text](const std::string& left, std::string_view help,
                                 std::string_view env) {
        std::string line(2, ' ');
        line += left;
        if (line.size() >= kIndent) {
            text += line + "\n";
            line.clear();
        }
        line.resize(kIndent, ' ');
        std::stringstream words{std::string(help)};
        std::string word;
        bool line_has_words = false;
        while (words >> word) {
            if (line_has_words && line.size() + 1 + word.size() > kWidth) {
                text += line + "\n";
                line.assign(kIndent, ' ');
                line_has_words = false;
            }
            line += (line_has_words ? " " : "") + word;
            line_has_words = true;
        }
        text += line + "\n";
        if (!env.empty())
            text += std::string(kIndent, ' ') + "env " + std::string(env) + "\n";
    };
    add_row("--config FILE",
            "JSON object of options, keys as listed in docs/options.md (also --config=FILE)",
            "ECU2MQTT_CONFIG");
    for (const auto& spec : option_specs()) {
        std::string left(spec.flag);
        if (!spec.value_name.empty()) {
            left += ' ';
            left += spec.value_name;
        }
        add_row(left, spec.help, spec.env);
    }
    add_row("--help", "show this text and exit", "");
    add_row("--version", "show the version and exit", "");
    add_row("--addon",
            "run as the Home Assistant add-on: options from /data/options.json, broker from the "
            "Supervisor (given alone)",
            "");
    add_row("--healthcheck",
            "exit 0 if the service using the same state directory is alive (its heartbeat is under "
            "a minute old), 1 otherwise; for container health checks",
            "");
    text += "\nOptions of `history` (it reads the database read-only, also while the service "
            "runs):\n";
    add_row("--state-dir DIR",
            "the service's state directory, found as the service finds it (this flag, "
            "ECU2MQTT_STATE_DIR, then the default)",
            "");
    add_row("--ecu ID", "only this ECU, 12 digits (default: every ECU)", "");
    add_row("--from DATE",
            "first day exported, YYYY-MM-DD on the ECU's own calendar (default: the "
            "oldest kept)",
            "");
    add_row("--to DATE", "last day exported, inclusive (default: the newest)", "");
    add_row("--curve",
            "the power curve instead: one row per kept upload, "
            "ecu_id,time,power_w,lifetime_kwh",
            "");
    add_row("--pvoutput",
            "the PVOutput queue instead: every status, whether it was sent, rejected or "
            "expired, and the days sent",
            "");
    text += "\nBy default one row per ECU day: "
            "ecu_id,date,energy_kwh,peak_power_w,readings,first_lifetime_kwh,\n"
            "last_lifetime_kwh,energy_basis. A day's energy is its highest lifetime reading minus "
            "the last\nreading of the previous day with data (energy_basis previous_day, or "
            "earlier_day when days\nwithout data lie between: their energy is counted here), or "
            "minus its own lowest reading\nwhen no earlier day is kept (first_reading). When the "
            "counter went down (a reset ECU), only\nits rises that day are counted "
            "(counter_reset).\n";
    text += "\nExit status: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a configuration "
            "error,\n1 when the service cannot start (e.g. a port is in use). `decode` exits 1 "
            "when any\nmessage failed to decode; `history` exits 2 for a bad option and 1 when "
            "the database\ncannot be read.\n";
    return text;
}

} // namespace ecu2mqtt
