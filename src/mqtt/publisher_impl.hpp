// The MQTT publisher's state, shared by its parts: the connection and what is sent
// (mqtt_publisher.cpp), the readings waiting in the store (publisher_spool.cpp) and what the broker
// hands back (publisher_readback.cpp). Private to src/mqtt.
#pragma once

#include "ecu2mqtt/mqtt/announced_devices.hpp"
#include "ecu2mqtt/mqtt/bridge_info.hpp"
#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"
#include "ecu2mqtt/mqtt/readback.hpp"
#include "ecu2mqtt/mqtt/reading_codec.hpp"
#include "ecu2mqtt/mqtt/superseded_readings.hpp"
#include "ecu2mqtt/net/tls_probe.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "paho_glue.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mqtt/async_client.h>
#include <set>

namespace ecu2mqtt {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

struct MqttPublisher::Impl : std::enable_shared_from_this<MqttPublisher::Impl> {
    static constexpr int kQos = 1;
    static constexpr std::chrono::seconds kMaxBackoff{60};

    Impl(asio::io_context& io, PublisherConfig cfg, Logger& log, Store* store)
        : io(io), config(std::move(cfg)), log(log), store(store), outbox(config.max_in_flight),
          announced(config.topics), readback(log, config.url, config.topics), retry_timer(io),
          publish_retry_timer(io), audit_timer(io), retained_check_timer(io) {}

    asio::io_context& io;
    PublisherConfig config;
    Logger& log;
    // Declared before the client: the client's threads may still report to them while it is
    // being destroyed.
    ConnectListener connect_listener;
    DeliveryListener delivery_listener;
    SubscribeListener subscribe_listener;
    std::unique_ptr<mqtt::async_client> client;
    mqtt::connect_options connect_options;
    Store* store; // null: nothing survives a restart
    // The readings committed to the store and not acknowledged yet, oldest first.
    std::deque<PendingSummary> pending;
    std::uintmax_t pending_bytes = 0;
    std::uint64_t dropped = 0;       // readings dropped because the store's share was full
    std::uint64_t last_sequence = 0; // the newest sequence given to a reading
    Outbox outbox;
    AnnouncedDevices announced;
    Readback readback;
    bool readback_heard = false; // a message of the current read-back came
    std::map<std::uint64_t, mqtt::delivery_token_ptr> tokens; // outbox id -> token, in flight
    std::uint64_t loaded_up_to = 0; // the newest stored reading handed to the outbox
    // Stored readings wait until the broker's receipt is known (the start-up audit), so that
    // none it already has is sent again.
    bool readings_released = false;
    std::uint64_t delivered_up_to = 0; // the broker's receipt, for this database
    std::string broker_receipt_payload;
    // Retained state payloads the broker had at start, to find how much of the reading after
    // the receipt it already took; and how many of that reading's messages to leave out.
    std::map<std::string, std::string> broker_states;
    std::map<std::uint64_t, std::size_t> already_sent;
    std::string audit_nonce;
    asio::steady_timer retry_timer;         // reconnect
    asio::steady_timer publish_retry_timer; // a refused publish
    asio::steady_timer audit_timer;
    asio::steady_timer retained_check_timer;
    std::chrono::seconds backoff{1};
    bool is_connected = false;
    bool connecting = false;
    bool tls_probe_running = false;
    bool shutting_down = false;
    bool publish_retry_armed = false;
    int failures_in_a_row = 0;
    std::uint64_t published = 0;
    std::uint64_t publish_failures = 0;
    std::string last_error;
    // What is announced of each ECU tracked, as the upload pipeline describes it.
    std::map<std::string, EcuDevices> devices;
    nlohmann::json bridge_facts; // null until told: no bridge/info
    std::string bridge_info_sent;
    // Set when what bridge/info lists may have changed: rebuilding it walks every ECU, too much
    // for each upload of a thousand; a burst of new ECUs gets one rebuild per turn of the loop.
    bool bridge_info_due = true;
    bool bridge_info_posted = false;
    // Discovery lifecycle: our retained device configs as the broker has them (component ids),
    // collected at start; and whether the start-up audit is done.
    std::map<std::string, std::set<std::string>> retained_devices;
    enum class Audit { NotStarted, Collecting, Done } audit = Audit::NotStarted;
    // After a reconnect: whether the broker still holds our retained messages, told by the
    // retained copy of the receipt arriving before the echo of `retained_check_nonce`.
    bool checking_retained = false;
    std::optional<std::uint64_t> broker_receipt; // what the broker's copy names, if ours
    std::string retained_check_nonce;

    // Hands work reported on the MQTT client's threads to the io thread; dropped if the publisher
    // is gone by then. Takes the weak pointer by value: nothing here touches `this`.
    template <class Fn>
    static void relay(asio::io_context& io, const std::weak_ptr<Impl>& weak, Fn fn) {
        asio::post(io, [weak, fn = std::move(fn)]() mutable {
            if (auto self = weak.lock())
                fn(*self);
        });
    }

    void start();

    void load_pending();

    // What was announced and is no longer wanted is cleared from the store's record, whatever
    // the broker hands back; clears not yet at the broker go out again, and the stored readings
    // leave their topics out (a forgotten inverter's state is not published again).
    void load_announced();

    // Memory holds at most kReadingsInMemory readings; the rest wait in the store and are read
    // in order as the broker acknowledges the ones before.
    static constexpr std::size_t kReadingsInMemory = 128;
    // Retained states read at start, at most: max ECUs x (1 + max inverters) by default.
    static constexpr std::size_t kMaxAuditedStates = 16 * 129;

    void refill();

    // A reading's messages, then the receipt that says the broker has all of them. The broker
    // gets them in order on one connection, so a receipt it has vouches for every message before
    // it; after a crash, the readings it names are not sent twice.
    void to_outbox(std::uint64_t sequence, std::vector<OutgoingMessage> messages);

    // At start, once the broker's receipt is known: readings it already has leave the store,
    // the rest go out.
    void release_readings();

    // Our states the broker holds at start are what to give back should it lose them later
    // (a restart without persistence); only of ECUs and inverters still known, so that a
    // forgotten one stays cleared.
    void remember_what_the_broker_holds();

    // The broker takes our messages in order, and a reading's receipt comes last: whatever it
    // took beyond the receipt is a first part of the next reading, never more. That part is
    // found by the retained copies of its state messages (each names its own timestamp), and
    // is not sent again.
    void find_partly_delivered();

    bool is_pending(std::uint64_t sequence) const;

    // The reading is no longer wanted (acknowledged, dropped or unreadable): out of the store.
    void forget_pending(std::uint64_t sequence);

    // A write whose failure only costs a repeat after a restart: logged, not retried.
    void persist_logged(WriteBatch batch, std::string what);

    // Commits `batch`; `done` runs on the io thread with the outcome. Without a store, at once.
    void persist(WriteBatch batch, Store::Done done);

    // A reading is committed: it joins the queue for the broker (straight from memory when
    // nothing older waits in the store only), and the oldest go when the store's share is full.
    void reading_kept(std::uint64_t sequence, std::size_t bytes, std::int64_t kept_at_s,
                      std::vector<OutgoingMessage> batch);

    void connect();

    void schedule_reconnect();

    void on_connect_failed(int rc);

    // The MQTT client says only that the connection failed: for mqtts://, one handshake of our
    // own names why (an unknown CA, a host name mismatch, an expired certificate).
    void explain_tls_failure();

    void on_connected();

    void on_connection_lost(const std::string& cause);

    void on_message(const mqtt::message& msg);

    // At start: collect our retained device configs, then clear those no longer wanted (all of
    // them when discovery is off), and remember the components of the rest so that components
    // that went away are removed from their device.
    // The broker's retained receipt: which readings of this database it already has.
    void note_receipt(const std::string& payload);

    // The reading a receipt names, if the receipt is of this database.
    std::optional<std::uint64_t> receipt_sequence(const std::string& payload);

    void note_broker_state(const std::string& topic, std::string payload);

    // Subscribes to our retained configs and receipt, then echoes a nonce to ourselves: the
    // broker sends retained messages when it takes a subscription, so once the echo is back, all
    // of them are in. A timer bounds the wait if the echo never comes.
    void start_discovery_audit();

    void finish_discovery_audit();

    // After a reconnect the broker's copy of our receipt tells two things:
    //  - none of ours, or one older than the newest it acknowledged: the broker was restarted
    //    without persistence (or before saving it) and lost retained messages. The last states
    //    would stay missing or old until each ECU uploads again (at night, until morning), so
    //    they are given back; readings wait until the broker has them, so that none lands
    //    after a newer one.
    //  - one naming reading N: every reading up to N reached the broker although the lost
    //    connection took their acknowledgements; sending them again would make their topics go
    //    back for a moment, so they complete as they are. Only readings sent whole on the lost
    //    connection can complete this way: a receipt planted by another client cannot make
    //    unsent readings vanish.
    // The receipt goes out only after a reading's messages, and readings wait during this
    // check, so a connection lost just after the broker's restart cannot have put it back. The
    // broker hands its copy out on a new subscription, before the echo of a nonce published
    // after subscribing.
    void check_broker_kept_retained();

    // The broker refused a read-back subscription (its ACL lets us write, not read): no echo
    // will come, so nothing waits for one, now or after later reconnects.
    void readback_refused(const std::string& filter);

    // Decides on what arrived: at the echo, or when the wait ran out.
    void finish_retained_check();

    // Readings kept so far that name the topic are older than the clear: left out.
    void clear_retained(const std::string& topic);

    // A device's config, state and availability; `write` keeps the clears until the broker
    // has them, so that a restart before then still clears them.
    void clear_device(const AnnouncedDevice& device, WriteBatch& write);

    // Clears the broker has, with no stored reading left that names their topics, leave the
    // store.
    void settle_clears();

    // Publishes while the window has room. A refused publish goes back to the outbox and is
    // retried shortly, connected or not.
    void pump();

    void note_publish_failure(const std::string& topic, const std::string& error);

    void arm_publish_retry();

    void on_delivery(std::uint64_t id, bool ok);

    // The broker has message `id`: readings now complete leave the store.
    void acknowledge(std::uint64_t id);

    // At shutdown the io thread cannot run the acknowledgement callbacks: wait on the tokens
    // themselves, so that a reading the broker has is not published again after the restart.
    void settle_in_flight(std::chrono::milliseconds budget);

    // Discovery and availability: latest values, queued only when they change.
    void publish_latest(const std::string& topic, const std::string& payload);

    void publish_device(DeviceDiscovery config_message);

    void publish_discovery(const std::string& ecu_id, const EcuDevices& ecu);

    void set_online(const std::string& ecu_id, bool online);

    // Clears everything of the ECU and its inverters: devices, states, availability.
    void forget_ecu(const std::string& id, WriteBatch& write);

    void on_raw(const std::string& ecu_id, std::string_view raw);

    // Retained like the bridge state, and queued again only when its text changes.
    void refresh_bridge_info();
    void refresh_bridge_info_soon();

    void shutdown(std::chrono::milliseconds budget);
};

} // namespace ecu2mqtt
