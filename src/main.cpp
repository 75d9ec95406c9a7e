// Entry point: parses options and wires listener, service and publisher together.
#include "ecu2mqtt/clock.hpp"
#include "ecu2mqtt/decode_command.hpp"
#include "ecu2mqtt/listener.hpp"
#include "ecu2mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/options.hpp"
#include "ecu2mqtt/service.hpp"

#include <utility> // before Asio: Boost 1.74 uses std::exchange without including it
#include <boost/asio.hpp>
#include <csignal>
#include <iostream>

extern char** environ;

namespace {

using namespace ecu2mqtt;
namespace asio = boost::asio;

constexpr std::chrono::milliseconds kShutdownGrace{500};
constexpr std::chrono::milliseconds kMqttShutdownBudget{300};

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
                     MqttPublisher& publisher, std::chrono::steady_clock::time_point give_up) {
    if (listener.open_connections() > 0 && std::chrono::steady_clock::now() < give_up) {
        timer.expires_after(std::chrono::milliseconds(10));
        timer.async_wait([&, give_up](boost::system::error_code) {
            finish_shutdown(io, timer, listener, publisher, give_up);
        });
        return;
    }
    publisher.shutdown(kMqttShutdownBudget);
    io.stop();
}

int run_service(const Options& options) {
    Logger log(std::cerr, options.log_level);
    SystemClock clock;
    asio::io_context io(1);

    PublisherConfig publisher_config;
    publisher_config.url = options.mqtt_url;
    publisher_config.user = options.mqtt_user;
    publisher_config.password = options.mqtt_password;
    publisher_config.client_id = options.mqtt_client_id;
    publisher_config.ca_file = options.mqtt_ca_file;
    publisher_config.topics = {options.base_topic, options.discovery_prefix};
    publisher_config.discovery = options.discovery;
    publisher_config.publish_raw = options.publish_raw;
    publisher_config.ecu_timeout = options.ecu_timeout;
    publisher_config.state_dir = options.state_dir;
    publisher_config.sw_version = ECU2MQTT_VERSION;
    MqttPublisher publisher(io, publisher_config, clock, log);
    Service service(clock, log, &publisher);

    ListenerConfig listener_config;
    listener_config.address = options.listen_address;
    listener_config.ports = options.ports;
    listener_config.max_message_bytes = options.max_message_bytes;
    listener_config.idle_timeout = options.idle_timeout;
    listener_config.max_connections = options.max_connections;
    listener_config.shutdown_grace = kShutdownGrace;
    Listener listener(io, listener_config, service, log);

    log.info("starting", {{"version", ECU2MQTT_VERSION}, {"state_dir", options.state_dir}});
    try {
        listener.start();
        publisher.start();
    } catch (const std::exception& e) {
        log.error("startup_failed", {{"error", e.what()}});
        return 1;
    }
    log.info("ready", {{"ports", join_ports(listener.bound_ports())}, {"mqtt", options.mqtt_url}});

    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer shutdown_timer(io);
    signals.async_wait([&](boost::system::error_code ec, int signal_number) {
        if (ec)
            return;
        log.info("shutting_down", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
        listener.stop();
        finish_shutdown(io, shutdown_timer, listener, publisher,
                        std::chrono::steady_clock::now() + kShutdownGrace);
    });
    io.run();

    const auto& served = service.counters();
    const auto net = listener.counters();
    log.info("stopped", {{"uploads", std::to_string(served.realtime)},
                         {"other_messages", std::to_string(served.other + served.control)},
                         {"undecodable", std::to_string(served.undecodable)},
                         {"incomplete", std::to_string(served.incomplete)},
                         {"connections", std::to_string(net.accepted)},
                         {"refused_over_limit", std::to_string(net.refused_over_limit)},
                         {"idle_timeouts", std::to_string(net.idle_timeouts)}});
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    CommandLine command_line;
    try {
        command_line = parse_command_line(args, read_environment());
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
    case Command::Run:
        break;
    }
    return run_service(command_line.options);
}
