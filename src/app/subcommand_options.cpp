#include "subcommand_options.hpp"

#include "ecu2mqtt/app/option_values.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

namespace ecu2mqtt {

CommandLine parse_replay(const std::vector<std::string>& args) {
    CommandLine result;
    result.command = Command::Replay;
    ArgumentCursor cursor(args, "replay: ");
    cursor.next(); // "replay"
    while (cursor.next()) {
        const std::string& a = cursor.name();
        if (a == "--help" || a == "-h") {
            result.command = Command::Help;
        } else if (a == "--to") {
            const auto host = cursor.value();
            if (!is_ip_literal(host) && !is_dns_name(host))
                throw OptionError("replay: --to: expected an IP address or a host name, got \"" +
                                  host + "\"");
            result.replay.host = host;
        } else if (a == "--port") {
            try {
                result.replay.port =
                    static_cast<std::uint16_t>(parse_integer(cursor.value(), 1, 65535));
            } catch (const OptionError& e) {
                throw OptionError(std::string("replay: --port: ") + e.what());
            }
        } else if (a == "--speed") {
            const std::string v = cursor.value();
            try {
                std::size_t used = 0;
                result.replay.speed = std::stod(v, &used);
                if (used != v.size())
                    result.replay.speed = -1;
            } catch (const std::exception&) {
                result.replay.speed = -1;
            }
            if (result.replay.speed < 0)
                throw OptionError("replay: --speed expects a number >= 0, got \"" + v + "\"");
        } else if (a.starts_with("--")) {
            throw OptionError("replay: unknown option \"" + a + "\"");
        } else {
            result.files.push_back(a);
        }
    }
    if (result.files.empty() && result.command == Command::Replay)
        throw OptionError("replay: which recording? (ecu2mqtt replay FILE...)");
    return result;
}

CommandLine parse_decode(const std::vector<std::string>& args) {
    CommandLine result;
    result.command = Command::Decode;
    result.files.assign(args.begin() + 1, args.end());
    for (const auto& f : result.files)
        if (f == "--help" || f == "-h")
            result.command = Command::Help;
    return result;
}

// `ecu2mqtt history [--state-dir DIR] [--ecu ID] [--from DATE] [--to DATE] [--curve]`. The
// state directory is found as the service finds it (flag, then environment, then default), so
// that the export reads the database the service writes.
CommandLine parse_history(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& environment) {
    CommandLine result;
    result.command = Command::History;
    auto& selection = result.history.selection;
    std::optional<std::string> state_dir;
    const auto date = [](const std::string& flag, const std::string& text) {
        if (!parse_iso_date(text))
            throw OptionError("history: " + flag + ": expected a date YYYY-MM-DD, got \"" + text +
                              "\"");
        return text;
    };
    ArgumentCursor cursor(args, "history: ");
    cursor.next(); // "history"
    while (cursor.next()) {
        const std::string& name = cursor.name();
        const auto value = [&] { return cursor.value(); };
        if (name == "--help" || name == "-h") {
            result.command = Command::Help;
            return result;
        } else if (name == "--state-dir") {
            state_dir = value();
            if (trimmed(*state_dir).empty())
                throw OptionError("history: --state-dir: expected a directory, got \"\"");
        } else if (name == "--ecu") {
            const auto id = value();
            if (id.size() != 12 || id.find_first_not_of("0123456789") != std::string::npos)
                throw OptionError("history: --ecu: expected an ECU id of 12 digits, got \"" + id +
                                  "\"");
            selection.ecu_id = id;
        } else if (name == "--from") {
            selection.from = date(name, value());
        } else if (name == "--to") {
            selection.to = date(name, value());
        } else if (name == "--curve") {
            if (cursor.has_inline_value())
                throw OptionError("history: --curve takes no value, got \"" +
                                  cursor.inline_value() + "\"");
            result.history.curve = true;
        } else if (name == "--pvoutput" && !cursor.has_inline_value()) {
            result.history.pvoutput = true;
        } else if (name.starts_with("-")) {
            throw OptionError("history: unknown option \"" + cursor.argument() + "\" (see --help)");
        } else {
            throw OptionError("history: unexpected argument \"" + cursor.argument() +
                              "\" (see --help)");
        }
    }
    // The PVOutput queue is listed whole: a selection it would ignore is refused, not dropped.
    if (result.history.pvoutput && (result.history.curve || !selection.ecu_id.empty() ||
                                    !selection.from.empty() || !selection.to.empty()))
        throw OptionError("history: --pvoutput lists the whole PVOutput queue: it takes no --ecu, "
                          "--from, --to or --curve");
    // ISO dates compare as text.
    if (!selection.from.empty() && !selection.to.empty() && selection.from > selection.to)
        throw OptionError("history: --from " + selection.from + " is after --to " + selection.to);
    if (!state_dir)
        if (const auto it = environment.find("ECU2MQTT_STATE_DIR");
            it != environment.end() && !trimmed(it->second).empty())
            state_dir = it->second;
    result.options.state_dir = state_dir ? *state_dir : default_state_dir(environment);
    return result;
}

} // namespace ecu2mqtt
