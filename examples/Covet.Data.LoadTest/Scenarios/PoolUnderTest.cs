using System.Data.Common;
using Covet.Data.LoadTest.Measurement;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>Which pool serves the connections.</summary>
public enum PoolKind
{
    /// <summary>Covet's pool (the provider's own pooling turned off underneath).</summary>
    Covet,
    /// <summary>The provider's built-in pool.</summary>
    Provider,
}

/// <summary>A pool's counts at one instant. <see cref="Waiting"/> is null when the pool does not say.</summary>
public readonly record struct PoolSnapshot(int Total, int Idle, int InUse, int? Waiting);

/// <summary>One data source under load: Covet's or the provider's own, behind the same <see cref="DbDataSource"/> surface.</summary>
public sealed class PoolUnderTest : IAsyncDisposable
{
    private readonly ProviderProfile _profile;
    private readonly ProviderPoolMeter? _meter;

    private PoolUnderTest(PoolKind kind, string label, DbDataSource dataSource, ProviderProfile profile, ProviderPoolMeter? meter)
    {
        Kind = kind;
        Label = label;
        DataSource = dataSource;
        _profile = profile;
        _meter = meter;
    }

    public PoolKind Kind { get; }
    public string Label { get; }
    public DbDataSource DataSource { get; }

    /// <summary>The Covet data source, or null for the provider's pool.</summary>
    public CovetDataSource? Covet => DataSource as CovetDataSource;

    /// <summary>Whether <see cref="Snapshot"/> returns anything.</summary>
    public bool HasSnapshots => Covet is not null || _meter is not null;

    /// <summary>Creates a fresh, empty pool of <paramref name="kind"/>.</summary>
    public static PoolUnderTest Create(ProviderProfile profile, PoolKind kind, PoolSettings settings)
    {
        if (kind == PoolKind.Covet)
            return new PoolUnderTest(kind, "Covet", profile.CreateCovet(settings), profile, null);

        // The listener must exist before the pool publishes anything (MySqlConnector reports deltas).
        var meter = profile.ProviderPoolMeter is var (meterName, instrument, poolTag, stateTag)
            ? new ProviderPoolMeter(meterName, instrument, poolTag, stateTag, ProviderProfile.ProviderPoolName)
            : null;
        return new PoolUnderTest(kind, profile.ProviderPoolLabel, profile.CreateProviderPool(settings), profile, meter);
    }

    /// <summary>The pool's counts now; null when the pool publishes none (Microsoft.Data.Sqlite).</summary>
    public PoolSnapshot? Snapshot()
    {
        if (Covet is { } covet)
        {
            var s = covet.GetStatistics();
            return new PoolSnapshot(s.Total, s.Idle, s.InUse, s.Waiting);
        }
        if (_meter is not null)
        {
            var (idle, used) = _meter.Read();
            return new PoolSnapshot(idle + used, idle, used, null);
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        _meter?.Dispose();
        if (Kind == PoolKind.Provider)
            _profile.AfterProviderPoolDisposed();
    }
}
