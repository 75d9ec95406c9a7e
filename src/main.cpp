// Entry point: parses options and wires listener, service and publisher together.
#include "ecu2mqtt/app/addon.hpp"
#include "ecu2mqtt/app/bridge_facts.hpp"
#include "ecu2mqtt/app/health.hpp"
#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/app/pvoutput_options.hpp"
#include "ecu2mqtt/app/recorder.hpp"
#include "ecu2mqtt/app/service.hpp"
#include "ecu2mqtt/app/supervisor_client.hpp"
#include "ecu2mqtt/app/upload_pipeline.hpp"
#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/telemetry.hpp"
#include "ecu2mqtt/http/dns_check.hpp"
#include "ecu2mqtt/http/http_server.hpp"
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/net/ecu_poller.hpp"
#include "ecu2mqtt/net/ema_forwarder.hpp"
#include "ecu2mqtt/net/listener.hpp"
#include "ecu2mqtt/net/pvoutput_client.hpp"
#include "ecu2mqtt/net/self_forwarding.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "ecu2mqtt/tools/decode_command.hpp"
#include "ecu2mqtt/tools/history_command.hpp"
#include "ecu2mqtt/tools/replay_command.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

extern char** environ;

namespace {

using namespace ecu2mqtt;
namespace asio = boost::asio;

// The status page's line on polling an ECU; empty when it is not polled.
std::string poll_state(const EcuPoller* poller, const std::string& ecu_id, const Clock& clock) {
    if (!poller)
        return "";
    const auto at = [&clock](std::int64_t unix) {
        return clock.iso_with_offset(
            std::chrono::system_clock::time_point(std::chrono::seconds(unix)));
    };
    // An address tied to no ECU yet (configured, no ECU uploads from it, none answered there) is
    // shown on every row.
    std::string untied;
    for (const auto& s : poller->status()) {
        if (s.ecu_id == ecu_id)
            return describe_poll_status(s, at);
        if (s.ecu_id.empty())
            untied += "; " + describe_poll_status(s, at);
    }
    return "port 8899 not polled yet" + untied;
}

constexpr std::chrono::milliseconds kShutdownGrace{500};
constexpr std::chrono::milliseconds kMqttShutdownBudget{300};
constexpr std::chrono::seconds kHeartbeatInterval{10};
constexpr std::int64_t kHeartbeatMaxAgeSeconds = 60;

std::map<std::string, std::string> read_environment() {
    std::map<std::string, std::string> env;
    for (char** entry = environ; entry && *entry; ++entry) {
        const std::string_view text(*entry);
        const auto eq = text.find('=');
        if (eq != std::string_view::npos)
            env.emplace(text.substr(0, eq), text.substr(eq + 1));
    }
    return env;
}

std::string join_ports(const std::vector<std::uint16_t>& ports) {
    std::string out;
    for (const auto p : ports)
        out += (out.empty() ? "" : ",") + std::to_string(p);
    return out;
}

// Waits for in-flight connections to finish (bounded), then lets the io_context run dry.
void finish_shutdown(asio::io_context& io, asio::steady_timer& timer, Listener& listener,
                     UploadPipeline& pipeline, std::chrono::steady_clock::time_point give_up) {
    if (listener.open_connections() > 0 && std::chrono::steady_clock::now() < give_up) {
        timer.expires_after(std::chrono::milliseconds(10));
        timer.async_wait([&, give_up](boost::system::error_code) {
            finish_shutdown(io, timer, listener, pipeline, give_up);
        });
        return;
    }
    pipeline.shutdown(kMqttShutdownBudget);
    io.stop();
}

void beat(asio::steady_timer& timer, const std::string& state_dir, const MqttPublisher& publisher,
          const Clock& clock, Logger& log) {
    const auto status = publisher.status();
    const Heartbeat heartbeat{
        std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count(),
        status.connected, status.spooled, status.dropped};
    if (const auto error = write_heartbeat(heartbeat_path(state_dir), heartbeat); !error.empty())
        log.warn("heartbeat_not_written", {{"error", error}});
    timer.expires_after(kHeartbeatInterval);
    timer.async_wait([&](boost::system::error_code ec) {
        if (!ec)
            beat(timer, state_dir, publisher, clock, log);
    });
}

void reopen_logs_on_hangup(asio::signal_set& hangup, Logger& log) {
    hangup.async_wait([&](boost::system::error_code ec, int) {
        if (ec)
            return;
        log.reopen();
        log.info("log_reopened");
        reopen_logs_on_hangup(hangup, log);
    });
}

int healthcheck(const Options& options) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto verdict =
        check_heartbeat(heartbeat_path(options.state_dir), now, kHeartbeatMaxAgeSeconds);
    std::cout << verdict.message << '\n';
    return verdict.healthy ? 0 : 1;
}

std::unique_ptr<Logger> make_logger(const Options& options) {
    if (options.log_file.empty())
        return std::make_unique<Logger>(std::cerr, options.log_level);
    return std::make_unique<Logger>(options.log_file, options.log_level);
}

// The full proxy's target, checked before anything starts. Throws OptionError when forwarding
// could not work; `unchecked` says why the target could not be checked, if it could not.
std::optional<ForwarderConfig> forward_target(const Options& options, std::string& unchecked) {
    if (options.forward_to_ema.empty())
        return std::nullopt;
    ForwarderConfig forward;
    try {
        forward = parse_forward_target(options.forward_to_ema);
    } catch (const std::invalid_argument& e) {
        throw OptionError(std::string("--forward-to-ema: ") + e.what());
    }
    forward.resolver = options.ema_resolver;
    forward.timeout = options.ema_timeout;
    forward.listen_address = options.listen_address;
    forward.listen_ports = options.ports;
    const auto loop = check_self_forwarding(forward, options.ports, options.listen_address);
    if (!loop.refusal.empty())
        throw OptionError("--forward-to-ema: " + loop.refusal);
    unchecked = loop.unchecked;
    return forward;
}

int run_service(const Options& options) {
    std::string forward_unchecked;
    std::optional<ForwarderConfig> forward;
    try {
        forward = forward_target(options, forward_unchecked);
    } catch (const OptionError& e) {
        std::cerr << "ecu2mqtt: " << e.what() << '\n';
        return 2;
    }
    SystemClock clock;
    // Before the logger, so that it outlives the logger's observer.
    Telemetry telemetry(ECU2MQTT_VERSION, clock.now());
    std::unique_ptr<Logger> logger;
    try {
        logger = make_logger(options);
    } catch (const std::exception& e) {
        std::cerr << "ecu2mqtt: " << e.what() << '\n';
        return 1;
    }
    Logger& log = *logger;
    asio::io_context io(1);
    log.set_observer(
        [&telemetry](LogLevel level, std::string_view line) { telemetry.on_log(level, line); });

    PublisherConfig publisher_config;
    publisher_config.url = options.mqtt_url;
    publisher_config.user = options.mqtt_user;
    publisher_config.password = options.mqtt_password;
    publisher_config.client_id = options.mqtt_client_id;
    publisher_config.ca_file = options.mqtt_ca_file;
    publisher_config.topics = {options.base_topic, options.discovery_prefix};
    publisher_config.discovery = options.discovery;
    publisher_config.publish_raw = options.publish_raw;
    publisher_config.spool_max_bytes = options.spool_max_mb * 1024 * 1024;
    publisher_config.sw_version = ECU2MQTT_VERSION;
    PipelineConfig pipeline_config;
    pipeline_config.ecu_timeout = options.ecu_timeout;
    pipeline_config.history_days = options.history_days;
    pipeline_config.max_ecus = options.max_ecus;
    pipeline_config.max_inverters_per_ecu = options.max_inverters_per_ecu;
    pipeline_config.forget_inverter_after = options.forget_inverters_after;
    pipeline_config.gap_expiry = options.gap_expiry;
    pipeline_config.poll_interval = options.poll_interval;
    pipeline_config.polling = !options.poll_ecus.empty();
    std::function<void(const std::string&)> forget_poll_target; // set once polling starts
    pipeline_config.on_ecu_forgotten = [&forget_poll_target](const std::string& id) {
        if (forget_poll_target)
            forget_poll_target(id);
    };
    std::unique_ptr<Store> store;
    try {
        store = std::make_unique<Store>(Store::file_in(options.state_dir), StoreLimits{},
                                        io.get_executor());
    } catch (const DatabaseError& e) {
        log.error("store_unusable",
                  {{"error", e.what()},
                   {"action", e.held_elsewhere()
                                  ? "stop the other program or service that holds it"
                                  : "check --state-dir: it must be a writable local directory"}});
        return 1;
    }
    std::unique_ptr<PvoutputClient> pvoutput;
    if (pvoutput_enabled(options)) {
        // Before anything is kept: every power point from now on has its status queued.
        const auto mapping = pvoutput_mapping(options);
        store->set_power_point_hook([mapping](Database& db, const PowerPoint& point) {
            queue_pvoutput_point(db, mapping, point);
        });
        PvoutputClientConfig pvoutput_config;
        pvoutput_config.api_key = options.pvoutput_api_key;
        pvoutput_config.mapping = mapping;
        pvoutput_config.url = options.pvoutput_url;
        pvoutput_config.donor = options.pvoutput_donor;
        pvoutput_config.user_agent = "ecu2mqtt/" ECU2MQTT_VERSION;
        pvoutput = std::make_unique<PvoutputClient>(io.get_executor(), std::move(pvoutput_config),
                                                    *store, clock, log);
    }
    MqttPublisher publisher(io, publisher_config, log, store.get());
    UploadPipeline pipeline(io, pipeline_config, publisher, clock, log, store.get());
    std::unique_ptr<FileRecorder> recorder;
    if (!options.record_dir.empty())
        recorder = std::make_unique<FileRecorder>(options.record_dir, clock, log,
                                                  std::uintmax_t(options.record_max_mb) << 20);
    Service service(clock, log, &pipeline,
                    ServiceOptions{options.backfill, options.allow_ecus, options.block_firmware},
                    recorder.get());
    service.set_telemetry(&telemetry);
    service.set_store(store.get());

    std::unique_ptr<EmaForwarder> forwarder;
    if (forward) {
        if (!forward_unchecked.empty())
            log.warn("ema_target_unchecked",
                     {{"host", forward->host}, {"reason", forward_unchecked}});
        forwarder = std::make_unique<EmaForwarder>(io.get_executor(), *forward, log);
        log.info("forwarding_to_ema",
                 {{"host", forward->host},
                  {"port", forward->port ? std::to_string(*forward->port) : "same as the ECU's"},
                  {"resolver", forward->resolver.empty() ? "system" : forward->resolver},
                  {"timeout_ms", std::to_string(forward->timeout.count())},
                  {"block_firmware", options.block_firmware ? "yes" : "no"}});
    }

    ListenerConfig listener_config;
    listener_config.address = options.listen_address;
    listener_config.ports = options.ports;
    listener_config.max_message_bytes = options.max_message_bytes;
    listener_config.idle_timeout = options.idle_timeout;
    listener_config.max_connections = options.max_connections;
    listener_config.max_connection_age = options.max_connection_age;
    listener_config.allowed_peers = options.allow_peers;
    listener_config.shutdown_grace = kShutdownGrace;
    Listener listener(io, listener_config, service, log, forwarder.get());

    std::unique_ptr<EcuPoller> poller;
    if (!options.poll_ecus.empty()) {
        auto poll_config = parse_poll_ecus(options.poll_ecus); // checked with the options
        poll_config.interval = options.poll_interval;
        poll_config.timeout = options.poll_timeout;
        poll_config.max_inverters = options.max_inverters_per_ecu;
        poller = std::make_unique<EcuPoller>(
            io, std::move(poll_config), log,
            [&pipeline](const std::string& id, const PolledEcuFacts& facts,
                        std::shared_ptr<const TimeZone> zone) {
                pipeline.on_polled(id, facts, std::move(zone));
            },
            [&listener](const std::string& address) { return listener.connected_from(address); });
        poller->set_known_facts(
            [&pipeline](const std::string& id) { return pipeline.polled_facts(id); });
        service.set_upload_observer([&poller](const std::string& id, const std::string& peer) {
            poller->on_upload(id, peer);
        });
        forget_poll_target = [&poller](const std::string& id) { poller->forget(id); };
        log.info("polling_ecus", {{"ecus", options.poll_ecus},
                                  {"interval_s", std::to_string(options.poll_interval.count())},
                                  {"timeout_s", std::to_string(options.poll_timeout.count())}});
    }

    DnsSelfCheck dns_check(
        io.get_executor(),
        DnsCheckConfig{options.dns_check_name, options.listen_address, options.advertised_addresses,
                       running_in_container()},
        [&telemetry](DnsCheckSnapshot verdict) { telemetry.set_dns(std::move(verdict)); });
    std::unique_ptr<HttpServer> http_server;
    if (options.http) {
        HttpServerConfig http_config;
        http_config.address = options.http_address;
        http_config.port = options.http_port;
        http_config.allowed_peers = options.http_allow_peers;
        http_config.request_timeout = options.http_timeout;
        // Each request reads the freshest state: the snapshot is taken on the io thread.
        http_server = std::make_unique<HttpServer>(
            io, http_config,
            [&] {
                dns_check.refresh();
                const auto net = listener.counters();
                telemetry.set_connections(net.accepted, net.refused_peers, net.evicted_at_limit);
                const auto spool = publisher.status();
                MqttSnapshot mqtt;
                mqtt.broker = options.mqtt_url; // the user and password are separate options
                mqtt.connected = spool.connected;
                mqtt.spooled = spool.spooled;
                mqtt.pending_readings = spool.spooled;
                mqtt.spool_dropped = spool.dropped;
                mqtt.spool_bytes = spool.spool_bytes;
                mqtt.last_error = spool.last_error;
                mqtt.oldest_pending_unix = spool.oldest_pending_unix;
                telemetry.set_mqtt(std::move(mqtt));
                telemetry.set_publish_totals(spool.published, spool.publish_failures);
                if (pvoutput)
                    telemetry.set_pvoutput(pvoutput->snapshot());
                const auto written = store->stats();
                telemetry.set_store({store->file().string(), written.transactions,
                                     written.failed_batches, !written.failing, written.last_error,
                                     store->free_bytes(), store->limits().low_space_bytes});
                for (const auto& ecu : pipeline.ecus()) {
                    if (ecu.today_kwh)
                        telemetry.set_today_energy(ecu.ecu_id, *ecu.today_kwh);
                    if (ecu.clock_offset_s)
                        telemetry.set_clock_offset(ecu.ecu_id,
                                                   static_cast<double>(*ecu.clock_offset_s));
                    telemetry.set_availability(ecu.ecu_id, ecu.online);
                    telemetry.set_weak_channels(ecu.ecu_id, ecu.weak_channels);
                    telemetry.set_tracked_inverters(ecu.ecu_id, ecu.inverters);
                    telemetry.set_polling(ecu.ecu_id,
                                          !ecu.time_zone.empty() ? "time zone " + ecu.time_zone
                                          : ecu.clock_offset_s
                                              ? "learned clock offset"
                                              : "the upload dates (no clock offset learned)",
                                          poll_state(poller.get(), ecu.ecu_id, clock));
                    if (ecu.live)
                        telemetry.set_live_reading(ecu.ecu_id, ecu.model, ecu.live->ecu_timestamp,
                                                   ecu.live->received_unix, ecu.live->power_w,
                                                   ecu.live->lifetime_kwh);
                }
                return telemetry.snapshot(clock.now());
            },
            log);
    }

    log.info("starting", {{"version", ECU2MQTT_VERSION}, {"state_dir", options.state_dir}});
    try {
        listener.start();
        pipeline.start();
        if (pvoutput)
            pvoutput->start();
        if (poller)
            poller->start();
        if (http_server) {
            http_server->start();
            dns_check.refresh();
            log.info("http_listening", {{"address", options.http_address},
                                        {"port", std::to_string(http_server->bound_port())}});
        }
    } catch (const std::exception& e) {
        log.error("startup_failed", {{"error", e.what()}});
        return 1;
    }
    publisher.set_bridge_facts(bridge_facts(
        options, ECU2MQTT_VERSION,
        http_server ? std::optional<std::uint16_t>(http_server->bound_port()) : std::nullopt));
    asio::steady_timer heartbeat_timer(io);
    beat(heartbeat_timer, options.state_dir, publisher, clock, log);
    asio::signal_set hangup(io, SIGHUP);
    reopen_logs_on_hangup(hangup, log);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer shutdown_timer(io);
    signals.async_wait([&](boost::system::error_code ec, int signal_number) {
        if (ec)
            return;
        log.info("shutting_down", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
        listener.stop();
        if (pvoutput)
            pvoutput->stop();
        if (poller)
            poller->stop();
        if (http_server)
            http_server->stop();
        hangup.cancel();
        heartbeat_timer.cancel();
        std::error_code ignored;
        std::filesystem::remove(heartbeat_path(options.state_dir), ignored);
        finish_shutdown(io, shutdown_timer, listener, pipeline,
                        std::chrono::steady_clock::now() + kShutdownGrace);
    });
    // Only now: whoever waits for this line may signal us, and every handler is in place.
    log.info("ready", {{"ports", join_ports(listener.bound_ports())}, {"mqtt", options.mqtt_url}});
    io.run();

    const auto& served = service.counters();
    const auto net = listener.counters();
    const auto spool = publisher.status();
    log.info("stopped", {{"uploads", std::to_string(served.realtime)},
                         {"duplicates", std::to_string(served.duplicates)},
                         {"not_kept", std::to_string(served.not_handled)},
                         {"other_messages", std::to_string(served.other + served.control)},
                         {"undecodable", std::to_string(served.undecodable)},
                         {"incomplete", std::to_string(served.incomplete)},
                         {"not_allowed", std::to_string(served.not_allowed)},
                         {"ema_relayed", std::to_string(served.ema_relayed)},
                         {"ema_fallbacks", std::to_string(served.ema_fallbacks)},
                         {"ema_blocked", std::to_string(served.ema_blocked)},
                         {"connections", std::to_string(net.accepted)},
                         {"evicted_at_limit", std::to_string(net.evicted_at_limit)},
                         {"refused_peers", std::to_string(net.refused_peers)},
                         {"idle_timeouts", std::to_string(net.idle_timeouts)},
                         {"too_old", std::to_string(net.too_old)},
                         {"pending_for_broker", std::to_string(spool.spooled)},
                         {"pending_dropped", std::to_string(spool.dropped)}});
    return 0;
}

std::string env_or(const std::map<std::string, std::string>& env, const std::string& name,
                   const std::string& fallback) {
    const auto it = env.find(name);
    return it == env.end() || it->second.empty() ? fallback : it->second;
}

// The host's addresses, where ECUs reach the add-on's published ports, for the DNS check: the
// container sees only its own. Without them the check says it cannot tell; nothing else needs
// them, so a failure is only reported.
void add_host_addresses(const std::map<std::string, std::string>& env,
                        std::vector<std::string>& args) {
    const std::string token = env_or(env, "SUPERVISOR_TOKEN", "");
    if (token.empty())
        return;
    try {
        const auto addresses = fetch_supervisor_host_addresses(
            env_or(env, "ECU2MQTT_SUPERVISOR_URL", "http://supervisor"), token,
            std::chrono::seconds(5));
        std::string list;
        for (const auto& address : addresses)
            list += (list.empty() ? "" : ",") + address;
        if (list.empty())
            return;
        std::cerr << "ecu2mqtt: host addresses from the Supervisor: " << list << '\n';
        args.insert(args.end(), {"--advertised-address", list});
    } catch (const AddonError& e) {
        std::cerr << "ecu2mqtt: the DNS check cannot know the host's addresses: " << e.what()
                  << '\n';
    }
}

// The add-on's start: /data/options.json and the Supervisor's MQTT service become arguments.
int run_addon(const std::map<std::string, std::string>& env) {
    const std::string options_path = env_or(env, "ECU2MQTT_ADDON_OPTIONS", "/data/options.json");
    const std::string state_dir = env_or(env, "ECU2MQTT_STATE_DIR", "/data");
    std::vector<std::string> args;
    try {
        std::ifstream in(options_path);
        if (!in)
            throw AddonError("cannot read the add-on options at " + options_path);
        nlohmann::json options;
        try {
            options = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            throw AddonError(options_path + " is not valid JSON: " + e.what());
        }
        std::optional<SupervisorMqtt> mqtt;
        if (!addon_names_broker(options)) {
            const std::string token = env_or(env, "SUPERVISOR_TOKEN", "");
            if (token.empty())
                throw AddonError("no SUPERVISOR_TOKEN: run as a Home Assistant add-on with "
                                 "`services: [mqtt:need]`, or set mqtt_url in the options");
            const std::string url = env_or(env, "ECU2MQTT_SUPERVISOR_URL", "http://supervisor");
            // The MQTT add-on may still be starting: a few tries before giving up.
            for (int attempt = 1;; ++attempt) {
                try {
                    mqtt = fetch_supervisor_mqtt(url, token, std::chrono::seconds(5));
                    break;
                } catch (const AddonError& e) {
                    if (attempt == 5)
                        throw;
                    std::cerr << "ecu2mqtt: " << e.what() << " (try " << attempt << " of 5)\n";
                    std::this_thread::sleep_for(std::chrono::seconds(2));
                }
            }
            std::cerr << "ecu2mqtt: broker from the Supervisor: " << mqtt->host << ":" << mqtt->port
                      << (mqtt->username.empty() ? "" : " as " + mqtt->username) << '\n';
        }
        args = addon_arguments(options, mqtt, state_dir);
        if (!addon_names_advertised_address(options))
            add_host_addresses(env, args);
        // The status page's place can still be moved (the tests keep it on loopback): later
        // arguments win over the add-on's defaults.
        for (const auto& [variable, flag] : {std::pair{"ECU2MQTT_HTTP_LISTEN", "--http-listen"},
                                             {"ECU2MQTT_HTTP_ALLOW_PEERS", "--http-allow-peers"}})
            if (const auto value = env_or(env, variable, ""); !value.empty())
                args.insert(args.end(), {flag, value});
    } catch (const AddonError& e) {
        std::cerr << "ecu2mqtt: " << e.what() << '\n';
        return 2;
    }
    try {
        return run_service(parse_command_line(args, env).options);
    } catch (const OptionError& e) {
        std::cerr << "ecu2mqtt: add-on option: " << e.what() << '\n';
        return 2;
    }
}

} // namespace

int main(int argc, char** argv) {
    // A log rotation that signals before the handler is installed must not end the service.
    std::signal(SIGHUP, SIG_IGN);
    // Past a file size limit (ulimit -f, LimitFSIZE=) a write then fails and is reported, instead
    // of the signal ending the service without a word.
    std::signal(SIGXFSZ, SIG_IGN);
    const std::vector<std::string> args(argv + 1, argv + argc);
    const auto environment = read_environment();
    CommandLine command_line;
    try {
        command_line = parse_command_line(args, environment);
    } catch (const OptionError& e) {
        std::cerr << "ecu2mqtt: " << e.what() << '\n';
        return 2;
    }
    switch (command_line.command) {
    case Command::Help:
        std::cout << help_text();
        return 0;
    case Command::Version:
        std::cout << "ecu2mqtt " << ECU2MQTT_VERSION << '\n';
        return 0;
    case Command::Decode:
        return run_decode(command_line.files, std::cin, std::cout, std::cerr);
    case Command::Replay:
        return run_replay(command_line.files, command_line.replay, std::cout, std::cerr);
    case Command::History:
        return run_history(command_line.options.state_dir, command_line.history, std::cout,
                           std::cerr);
    case Command::Healthcheck:
        return healthcheck(command_line.options);
    case Command::Addon:
        return run_addon(environment);
    case Command::Run:
        break;
    }
    return run_service(command_line.options);
}
