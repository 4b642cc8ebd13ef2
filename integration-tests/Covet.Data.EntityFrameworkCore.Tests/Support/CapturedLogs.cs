using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>Captures a pool's log events (CovetPoolOptions.LoggerFactory) with FakeLogger.</summary>
internal sealed class CapturedLogs : IDisposable
{
    // Covet's event ids (Covet.Data.Diagnostics.CovetLog).
    public const int LeakSuspected = 4001;
    public const int LeakReturned = 4002;
    public const int ForgottenConnection = 4004;
    public const int PrePingFailed = 3001;
    public const int SocketCheckFoundClosed = 3004;

    public CapturedLogs()
    {
        Collector = new FakeLogCollector();
        Factory = new LoggerFactory([new FakeLoggerProvider(Collector)]);
    }

    public FakeLogCollector Collector { get; }
    public ILoggerFactory Factory { get; }

    public IReadOnlyList<FakeLogRecord> WithEventId(int eventId) =>
        Collector.GetSnapshot().Where(r => r.Id.Id == eventId).ToList();

    public string Dump() => string.Join("\n", Collector.GetSnapshot().Select(r => $"[{r.Id.Id} {r.Level}] {r.Message}"));

    public void Dispose() => Factory.Dispose();
}
