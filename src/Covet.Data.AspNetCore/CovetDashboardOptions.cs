namespace Covet.Data.AspNetCore;

/// <summary>Settings of the Covet dashboard mapped by <see cref="CovetDashboardEndpointRouteBuilderExtensions.MapCovetDashboard"/>.</summary>
public sealed class CovetDashboardOptions
{
    /// <summary>
    /// The authorization policy a user must satisfy to run actions (clear, pause, resume, drain, resize). Default null: the
    /// dashboard is read-only and every action answers 403. The policy must be registered with <c>AddAuthorization</c>.
    /// </summary>
    public string? ActionsPolicy { get; set; }

    /// <summary>
    /// Serve requests that do not come from this machine. Default false: only loopback requests (or ones whose remote
    /// address is the local address) are served, others get 403, as with Hangfire's LocalRequestsOnlyAuthorizationFilter.
    /// Set it only together with <c>.RequireAuthorization(...)</c> on the builder <c>MapCovetDashboard</c> returns.
    /// </summary>
    public bool AllowRemoteRequests { get; set; }

    /// <summary>How often the utilization history is sampled. Default 1 s; at least 100 ms.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Samples kept per pool (the oldest are dropped). Default 600: ten minutes at one a second. 1 to 100,000.</summary>
    public int HistoryLength { get; set; } = 600;

    /// <summary>How many of the longest-held checkouts the page and the API show. Default 20; 1 to 1,000.</summary>
    public int MaxHolders { get; set; } = 20;

    /// <summary>The clock of the history sampler (tests use a fake one). Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal CovetDashboardOptions Copy() => (CovetDashboardOptions)MemberwiseClone();

    internal void Validate()
    {
        if (SampleInterval < TimeSpan.FromMilliseconds(100))
            throw new ArgumentOutOfRangeException(nameof(SampleInterval), SampleInterval, "CovetDashboardOptions.SampleInterval must be at least 100 ms.");
        if (HistoryLength is < 1 or > 100_000)
            throw new ArgumentOutOfRangeException(nameof(HistoryLength), HistoryLength, "CovetDashboardOptions.HistoryLength must be between 1 and 100000.");
        if (MaxHolders is < 1 or > 1000)
            throw new ArgumentOutOfRangeException(nameof(MaxHolders), MaxHolders, "CovetDashboardOptions.MaxHolders must be between 1 and 1000.");
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        if (ActionsPolicy is not null && string.IsNullOrWhiteSpace(ActionsPolicy))
            throw new ArgumentException("CovetDashboardOptions.ActionsPolicy must be null (read-only) or the name of an authorization policy.", nameof(ActionsPolicy));
    }
}
