using Covet.Data.AspNetCore.Assets;
using Covet.Data.AspNetCore.History;
using Covet.Data.AspNetCore.Pools;
using Covet.Data.AspNetCore.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Covet.Data.AspNetCore.Api;

/// <summary>The handlers of one mapped dashboard: the page, the read API and the actions.</summary>
internal sealed class DashboardEndpoints(IDashboardPools pools, PoolHistorySampler sampler, CovetDashboardOptions options, ActionGuard guard,
    DashboardAssets assets, string prefix, ILogger logger)
{
    private int IntervalMs => (int)options.SampleInterval.TotalMilliseconds;

    public async Task<IResult> Page(HttpContext context) =>
        assets.Page(context, context.Request.PathBase + prefix, await ActionsAllowedAsync(context) ? guard.TokenFor(context) : null);

    public IResult Asset(HttpContext context, string name) => assets.Asset(context, name);

    public async Task<IResult> List(HttpContext context)
    {
        NoStore(context);
        var list = pools.List().Select(p => PoolJson.From(p, holders: null)).ToList();
        return DashboardJsonResults.Json(new PoolListJson(options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds(), await ActionsAllowedAsync(context),
            IntervalMs, options.HistoryLength, list));
    }

    public IResult Get(HttpContext context, long id)
    {
        NoStore(context);
        var pool = Find(id);
        return pool is null ? NotFound(id) : DashboardJsonResults.Json(PoolJson.From(pool, HoldersOf(id, options.MaxHolders)));
    }

    public IResult Holders(HttpContext context, long id, int? max)
    {
        NoStore(context);
        return Find(id) is null ? NotFound(id) : DashboardJsonResults.Json(HoldersOf(id, Math.Clamp(max ?? options.MaxHolders, 1, options.MaxHolders)));
    }

    public IResult History(HttpContext context, long id, long? since)
    {
        NoStore(context);
        if (Find(id) is null)
            return NotFound(id);
        var samples = sampler.For(id)?.Since(since ?? long.MinValue) ?? [];
        return DashboardJsonResults.Json(HistoryJson.From(id, IntervalMs, options.HistoryLength, samples));
    }

    // ---- actions: reached only through the actions policy and the CSRF guard (see MapCovetDashboard) ----

    public Task<IResult> Clear(HttpContext context, long id) => ActAsync(context, "clear", id, () =>
    {
        var affected = pools.Clear(id);
        return Task.FromResult(new ActionJson("clear", id, affected == 1 ? "Pool cleared." : $"{affected} pools of this name cleared.", affected));
    });

    public Task<IResult> Pause(HttpContext context, long id) => ActAsync(context, "pause", id, async () =>
    {
        await pools.PauseAsync(id, context.RequestAborted);
        return new ActionJson("pause", id, "Pool paused: new checkouts wait until it is resumed.");
    });

    public Task<IResult> Resume(HttpContext context, long id) => ActAsync(context, "resume", id, () =>
    {
        pools.Resume(id);
        return Task.FromResult(new ActionJson("resume", id, "Pool resumed."));
    });

    public Task<IResult> Drain(HttpContext context, long id, double? timeoutSeconds) => ActAsync(context, "drain", id, async () =>
    {
        var seconds = timeoutSeconds ?? 30;
        if (!(seconds is > 0 and <= 600))
            throw new ArgumentOutOfRangeException(nameof(timeoutSeconds), "timeoutSeconds must be more than 0 and at most 600.");
        var report = await pools.DrainAsync(id, TimeSpan.FromSeconds(seconds), context.RequestAborted);
        return new ActionJson("drain", id, $"Drained: {report.Closed} closed, {report.Stragglers.Count} still borrowed.",
            Closed: report.Closed, Stragglers: [.. report.Stragglers.Select(HolderJson.From)]);
    });

    public Task<IResult> Resize(HttpContext context, long id, ResizeJson? body) => ActAsync(context, "resize", id, () =>
    {
        if (body is null)
            throw new ArgumentException("The body must be JSON: {\"minPoolSize\": n, \"maxPoolSize\": n}.");
        var pool = Find(id) ?? throw new DashboardPoolNotFoundException(id);
        var min = body.MinPoolSize ?? pool.Statistics.MinPoolSize;
        // The sizes are checked by the pool itself (one authority): a refused one is a CovetConfigurationException naming
        // MinPoolSize or MaxPoolSize, answered 400 below, and no pool of the name was changed.
        var affected = pools.Resize(id, min, body.MaxPoolSize);
        return Task.FromResult(new ActionJson("resize", id,
            (affected == 1 ? "Pool resized" : $"{affected} pools of this name resized") + $" to {min}..{body.MaxPoolSize}.", affected));
    });

    /// <summary>The answer of every action while <see cref="CovetDashboardOptions.ActionsPolicy"/> is null.</summary>
    public static IResult ReadOnly() => DashboardJsonResults.Json(
        new { error = "The Covet dashboard is read-only: name an authorization policy in CovetDashboardOptions.ActionsPolicy to allow actions." },
        statusCode: StatusCodes.Status403Forbidden);

    private async Task<IResult> ActAsync(HttpContext context, string action, long id, Func<Task<ActionJson>> run)
    {
        NoStore(context);
        var user = context.User.Identity?.Name ?? "(anonymous)";
        try
        {
            var result = await run();
            DashboardLog.Action(logger, action, id, user, result.Message);
            return DashboardJsonResults.Json(result);
        }
        catch (Exception e) when (e is DashboardPoolNotFoundException or ObjectDisposedException)
        {
            return NotFound(id);   // ObjectDisposedException: the pool was disposed between finding it and acting on it
        }
        catch (Exception e) when (e is ArgumentException or CovetConfigurationException)
        {
            return DashboardJsonResults.Json(new { error = e.Message }, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private async Task<bool> ActionsAllowedAsync(HttpContext context)
    {
        if (options.ActionsPolicy is null)
            return false;
        var authorization = context.RequestServices.GetRequiredService<IAuthorizationService>();
        return (await authorization.AuthorizeAsync(context.User, options.ActionsPolicy)).Succeeded;
    }

    private DashboardPool? Find(long id) => pools.List().FirstOrDefault(p => p.Statistics.PoolId == id);

    private IReadOnlyList<HolderJson> HoldersOf(long id, int max) => [.. pools.Holders(id, max).Select(HolderJson.From)];

    private static IResult NotFound(long id) => DashboardJsonResults.Json(new { error = $"No live pool has id {id}." }, statusCode: StatusCodes.Status404NotFound);

    private static void NoStore(HttpContext context) => context.Response.Headers.CacheControl = "no-store";
}

internal static partial class DashboardLog
{
    [LoggerMessage(EventId = 9001, Level = LogLevel.Information, Message = "Covet dashboard: {Action} on pool {PoolId} by {User}: {Result}")]
    public static partial void Action(ILogger logger, string action, long poolId, string user, string result);
}
