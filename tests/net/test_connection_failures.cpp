// A failure while handling a connection is never silent: it is logged with the peer, the ECU
// still gets the fake reply when one is due, and the connection is forgotten.
#include "ecu2mqtt/app/service.hpp"
#include "ecu2mqtt/net/ema_forwarder.hpp"
#include "ecu2mqtt/net/listener.hpp"
#include "support/fixed_clock.hpp"
#include "support/net.hpp"
#include "support/test_paths.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <future>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <unistd.h>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_connection_failures {
namespace {

const std::string kCapturedReply = "10120240206111714";

class NullSink final : public ReadingSink {
  public:
    void on_realtime(const RealtimeUpload&, std::chrono::system_clock::time_point,
                     HandlingDone done) override {
        done({});
    }
    void on_raw(const std::string&, std::string_view) override {}
};

// The real service, failing where told to.
class FailingHandler final : public MessageHandler {
  public:
    enum class Fails { Never, OnMessage, WantsUpstream };
    FailingHandler(Service& service, Fails fails) : service_(service), fails_(fails) {}
    void on_message(const InboundMessage& message, ReplyDone reply) override {
        if (fails_ == Fails::OnMessage)
            throw std::runtime_error("handler broke");
        service_.on_message(message, std::move(reply));
    }
    void on_incomplete(const InboundMessage& leftover, std::string_view why) override {
        service_.on_incomplete(leftover, why);
    }
    bool wants_upstream(const InboundMessage& message) override {
        if (fails_ == Fails::WantsUpstream)
            throw std::runtime_error("cannot tell");
        return service_.wants_upstream(message);
    }

  private:
    Service& service_;
    Fails fails_;
};

// A UDP port on loopback that takes DNS queries and never answers them.
class SilentResolver {
  public:
    SilentResolver() { std::tie(fd_, port_) = test::bound_loopback_socket(SOCK_DGRAM); }
    ~SilentResolver() { ::close(fd_); }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// A listener in full proxy mode (when given a forwarder config) with its own io thread.
struct FailingListener {
    FailingListener(FailingHandler::Fails fails, std::optional<ForwarderConfig> forward = {})
        : log(log_text, LogLevel::Debug), service(clock, log, &sink, ServiceOptions{}),
          handler(service, fails) {
        if (forward)
            forwarder = std::make_unique<EmaForwarder>(io.get_executor(), *forward, log);
        ListenerConfig config;
        config.address = "127.0.0.1";
        config.ports = {0};
        listener = std::make_unique<Listener>(io, config, handler, log, forwarder.get());
        listener->start();
        port = listener->bound_ports().at(0);
        thread = std::thread([this] { io.run(); });
    }
    template <class F> auto run_on_io(F f) {
        std::promise<decltype(f())> result;
        boost::asio::post(io, [&] { result.set_value(f()); });
        return result.get_future().get();
    }
    ~FailingListener() {
        run_on_io([this] {
            listener->stop();
            return 0;
        });
        thread.join();
    }
    std::size_t open_connections() {
        return run_on_io([this] { return listener->open_connections(); });
    }
    // Open connections after waiting up to a second for them to close.
    std::size_t connections_left() {
        for (int i = 0; i < 100 && open_connections() > 0; ++i)
            std::this_thread::sleep_for(10ms);
        return open_connections();
    }
    std::string log_lines() {
        return run_on_io([this] { return log_text.str(); });
    }

    std::stringstream log_text;
    Logger log;
    test::FixedClock clock{LocalDateTime{2026, 11, 25, 9, 30, 0}};
    NullSink sink;
    Service service;
    FailingHandler handler;
    boost::asio::io_context io;
    std::unique_ptr<EmaForwarder> forwarder;
    std::unique_ptr<Listener> listener;
    std::uint16_t port = 0;
    std::thread thread;
};

// The reply to one upload and how long the ECU waited for it.
std::pair<std::string, std::chrono::milliseconds> timed_upload(std::uint16_t port) {
    const auto start = std::chrono::steady_clock::now();
    const auto reply = test::upload(port, test::captured_upload());
    return {reply, std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)};
}

ForwarderConfig ema_by_name(std::string resolver) {
    ForwarderConfig config;
    config.host = "ecu.apsystemsema.com";
    config.resolver = std::move(resolver);
    config.timeout = 500ms;
    return config;
}

} // namespace

TEST_CASE("a handler that throws: the ECU still gets the fake reply, logged with the peer") {
    FailingListener running(FailingHandler::Fails::OnMessage);
    {
        test::TcpClient ecu(running.port);
        ecu.send(test::captured_upload());
        CHECK(ecu.receive(17) == kCapturedReply);
        ecu.send(test::captured_upload()); // the connection goes on serving
        CHECK(ecu.receive(17) == kCapturedReply);
    }
    CHECK(running.connections_left() == 0);
    const auto log = running.log_lines();
    CHECK_THAT(log, Catch::Contains("level=error event=message_handling_failed ecu=216000064136 "
                                    "peer=127.0.0.1:") &&
                        Catch::Contains("error=\"handler broke\""));
}

TEST_CASE("a handler that throws on a message without a timestamp: closed, logged, forgotten") {
    FailingListener running(FailingHandler::Fails::OnMessage);
    test::TcpClient ecu(running.port);
    ecu.send("APS1100160001END\n");
    CHECK(ecu.closed_by_peer());
    CHECK(running.connections_left() == 0);
    CHECK_THAT(running.log_lines(), Catch::Contains("event=message_handling_failed"));
}

TEST_CASE("a handler that cannot tell whether to forward: answered without EMA") {
    SilentResolver dns;
    FailingListener running(FailingHandler::Fails::WantsUpstream, ema_by_name(dns.address()));
    const auto [reply, waited] = timed_upload(running.port);
    CHECK(reply == kCapturedReply);
    CHECK(waited < 400ms); // EMA was not waited for
    CHECK(running.connections_left() == 0);
    CHECK_THAT(running.log_lines(), Catch::Contains("step=wants_upstream"));
}

TEST_CASE("forwarding with a broken resolver: the fake reply within the timeout, logged") {
    SECTION("a resolver that does not parse") {
        FailingListener running(FailingHandler::Fails::Never, ema_by_name("1.1.1.1:"));
        const auto [reply, waited] = timed_upload(running.port);
        CHECK(reply == kCapturedReply);
        CHECK(waited < 500ms);
        CHECK(running.connections_left() == 0);
        CHECK_THAT(running.log_lines(),
                   Catch::Contains("event=ema_no_reply ecu=216000064136 peer=127.0.0.1:") &&
                       Catch::Contains("bad resolver"));
    }
    SECTION("a resolver that never answers") {
        SilentResolver dns;
        FailingListener running(FailingHandler::Fails::Never, ema_by_name(dns.address()));
        const auto [reply, waited] = timed_upload(running.port);
        CHECK(reply == kCapturedReply);
        CHECK(waited >= 450ms);
        CHECK(waited < 1000ms);
        CHECK(running.connections_left() == 0);
        CHECK_THAT(running.log_lines(), Catch::Contains("no answer from the resolver"));
    }
    SECTION("a name the resolver cannot be asked for") {
        auto config = ema_by_name("127.0.0.1:53");
        config.host = "bad..name";
        FailingListener running(FailingHandler::Fails::Never, config);
        CHECK(timed_upload(running.port).first == kCapturedReply);
        CHECK(running.connections_left() == 0);
        CHECK_THAT(running.log_lines(), Catch::Contains("cannot ask the resolver for bad..name"));
    }
}

TEST_CASE("forwarding through the system resolver is bounded by the timeout") {
    // A name no resolver knows: answered fast, or slow where DNS is unreachable; never longer
    // than the timeout either way.
    auto config = ema_by_name("");
    config.host = "ecu.apsystemsema.invalid";
    FailingListener running(FailingHandler::Fails::Never, config);
    const auto [reply, waited] = timed_upload(running.port);
    CHECK(reply == kCapturedReply);
    CHECK(waited < 1000ms);
    CHECK(running.connections_left() == 0);
    CHECK_THAT(running.log_lines(), Catch::Contains("resolving ecu.apsystemsema.invalid") ||
                                        Catch::Contains("cannot resolve ecu.apsystemsema.invalid"));
}

} // namespace test_connection_failures
