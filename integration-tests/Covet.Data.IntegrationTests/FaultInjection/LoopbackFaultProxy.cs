using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>
/// A TCP proxy between a test's pool and one loopback server, with switches for network faults. It listens on
/// 127.0.0.1 at an ephemeral port and forwards to 127.0.0.1:<c>targetPort</c>; it never touches anything but loopback,
/// and a fault affects only the connections made through this proxy (other tests on the same server see nothing).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="CutAll"/>: reset (RST) every current connection, on both sides.</item>
/// <item><see cref="RefuseNew"/>: accept new connections and reset them at once (a server that is down).</item>
/// <item><see cref="BlackHole"/>: keep every connection open but forward nothing, either way (a partition: no answer,
/// no error). New connections are accepted and held; bytes read meanwhile are delivered when it lifts.</item>
/// <item><see cref="Latency"/>: each forwarded chunk waits this long, in both directions (a round trip costs twice
/// this); <see cref="ConnectLatency"/>: a new connection waits this long before it is connected to the server.</item>
/// </list>
/// </remarks>
internal sealed class LoopbackFaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Link, byte> _links = new();
    private readonly Lock _gateLock = new();
    private readonly Task _acceptLoop;
    private TaskCompletionSource _flowing = NewGate(open: true); // completed while bytes flow; pending while black-holed
    private long _accepted;
    private long _refused;
    private long _latencyTicks;
    private long _connectLatencyTicks;
    private volatile bool _refuseNew;

    public LoopbackFaultProxy(int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1024);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The port clients connect to (on 127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>Client connections accepted since the proxy started (refused ones included).</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Client connections reset at once because <see cref="RefuseNew"/> was on.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Client connections currently open through the proxy (including ones still being connected).</summary>
    public int Active => _links.Count;

    public bool RefuseNew
    {
        get => _refuseNew;
        set => _refuseNew = value;
    }

    public bool BlackHole
    {
        get => !Volatile.Read(ref _flowing).Task.IsCompleted;
        set
        {
            lock (_gateLock)
            {
                if (value && _flowing.Task.IsCompleted)
                    Volatile.Write(ref _flowing, NewGate(open: false));
                else if (!value)
                    _flowing.TrySetResult();
            }
        }
    }

    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    public TimeSpan ConnectLatency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _connectLatencyTicks));
        set => Interlocked.Exchange(ref _connectLatencyTicks, value.Ticks);
    }

    /// <summary>Resets every current connection; returns how many there were.</summary>
    public int CutAll()
    {
        var cut = 0;
        foreach (var link in _links.Keys)
            if (link.Close())
                cut++;
        return cut;
    }

    /// <summary>Back to a healthy network: no refusal, no black hole, no latency. Existing connections stay.</summary>
    public void Heal()
    {
        RefuseNew = false;
        BlackHole = false;
        Latency = TimeSpan.Zero;
        ConnectLatency = TimeSpan.Zero;
    }

    public override string ToString() =>
        $"proxy :{Port} -> :{_target.Port} (accepted {Accepted}, refused {Refused}, active {Active})";

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // a client that gave up while queued
            }
            Interlocked.Increment(ref _accepted);
            if (_refuseNew)
            {
                Interlocked.Increment(ref _refused);
                Reset(client);
                continue;
            }
            var link = new Link(client, _stop.Token);
            _links.TryAdd(link, 0);
            link.Task = ServeAsync(link);
        }
    }

    private async Task ServeAsync(Link link)
    {
        try
        {
            link.Client.NoDelay = true;
            if (ConnectLatency is { Ticks: > 0 } connectLatency)
                await Task.Delay(connectLatency, link.Token).ConfigureAwait(false);
            await Volatile.Read(ref _flowing).Task.WaitAsync(link.Token).ConfigureAwait(false);
            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            link.Upstream = upstream;
            if (link.IsClosed)
                Reset(upstream); // cut while we were about to connect
            await upstream.ConnectAsync(_target, link.Token).ConfigureAwait(false);
            await Task.WhenAll(PumpAsync(link.Client, upstream, link), PumpAsync(upstream, link.Client, link)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Any failure ends this one connection, nothing else.
        }
        finally
        {
            link.Close();
            _links.TryRemove(link, out _);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, Link link)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, link.Token).ConfigureAwait(false);
                if (read == 0)
                    return;
                if (Latency is { Ticks: > 0 } latency)
                    await Task.Delay(latency, link.Token).ConfigureAwait(false);
                await Volatile.Read(ref _flowing).Task.WaitAsync(link.Token).ConfigureAwait(false);
                for (var sent = 0; sent < read;)
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, link.Token).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // The other side closed, or the link was cut.
        }
        finally
        {
            link.Close(); // one direction ending ends the connection (no half-close in database protocols)
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        CutAll();
        BlackHole = false; // release anything parked on the gate
        var serving = _links.Keys.Select(l => l.Task).OfType<Task>().ToArray();
        await Task.WhenAll(serving).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        _stop.Dispose();
    }

    private static TaskCompletionSource NewGate(bool open)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open)
            gate.SetResult();
        return gate;
    }

    /// <summary>Closes with RST (linger 0): the peer sees "connection reset", as when a server or a network path dies.</summary>
    private static void Reset(Socket? socket)
    {
        if (socket is null)
            return;
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception)
        {
            // already closed
        }
        socket.Dispose();
    }

    /// <summary>One client connection and its upstream twin.</summary>
    private sealed class Link(Socket client, CancellationToken stop)
    {
        private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        private int _closed;

        public Socket Client { get; } = client;
        public volatile Socket? Upstream;
        public Task? Task;
        public CancellationToken Token => _cts.Token;
        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        /// <summary>Resets both sockets once; true for the caller that did it.</summary>
        public bool Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
                return false;
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
            Reset(Client);
            Reset(Upstream);
            return true;
        }
    }
}
