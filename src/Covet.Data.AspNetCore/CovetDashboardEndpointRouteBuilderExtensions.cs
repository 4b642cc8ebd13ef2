using Covet.Data.AspNetCore.Api;
using Covet.Data.AspNetCore.Assets;
using Covet.Data.AspNetCore.History;
using Covet.Data.AspNetCore.Pools;
using Covet.Data.AspNetCore.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Covet.Data.AspNetCore;

/// <summary>Maps the Covet dashboard.</summary>
public static class CovetDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the Covet dashboard under <paramref name="prefix"/>: the page at <c>{prefix}</c> and a JSON API at
    /// <c>{prefix}/api/pools</c>, <c>{prefix}/api/pools/{id}</c>, <c>{prefix}/api/pools/{id}/holders</c>,
    /// <c>{prefix}/api/pools/{id}/history</c> and the POST actions <c>{prefix}/api/pools/{id}/clear|pause|resume|drain|resize</c>.
    /// By default it serves local requests only and is read-only; actions need <see cref="CovetDashboardOptions.ActionsPolicy"/>
    /// and the page's anti-forgery token. While the host runs, a background sampler records each pool's utilization and
    /// wait time (<see cref="CovetDashboardOptions.HistoryLength"/> samples per pool); nothing runs when the dashboard is not mapped.
    /// </summary>
    /// <param name="endpoints">The application (or any endpoint route builder).</param>
    /// <param name="prefix">Where the dashboard lives. Default <c>/covet</c>.</param>
    /// <param name="configure">Adjusts the options, after any <c>services.Configure&lt;CovetDashboardOptions&gt;(...)</c>.</param>
    /// <returns>The route group of every dashboard endpoint: add <c>.RequireAuthorization(...)</c> or other conventions to it.</returns>
    /// <exception cref="ArgumentException"><paramref name="prefix"/> does not start with '/', or an option is out of range.</exception>
    public static RouteGroupBuilder MapCovetDashboard(this IEndpointRouteBuilder endpoints, string prefix = "/covet", Action<CovetDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (!prefix.StartsWith('/'))
            throw new ArgumentException($"The dashboard prefix must start with '/' (got '{prefix}').", nameof(prefix));
        prefix = prefix.TrimEnd('/');

        var services = endpoints.ServiceProvider;
        var options = services.GetService<IOptions<CovetDashboardOptions>>()?.Value.Copy() ?? new CovetDashboardOptions();
        configure?.Invoke(options);
        options.Validate();

        var pools = services.GetService<IDashboardPools>() ?? new CovetPoolsDashboardSource();
        var sampler = new PoolHistorySampler(pools, options);
        StartWithHost(services, sampler);
        var guard = new ActionGuard();
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger("Covet.Data.AspNetCore.Dashboard") ?? NullLogger.Instance;
        var api = new DashboardEndpoints(pools, sampler, options, guard, new DashboardAssets(), prefix, logger);

        var group = endpoints.MapGroup(prefix);
        if (!options.AllowRemoteRequests)
            group.AddEndpointFilterFactory(LocalRequests.Filter);

        // (Delegate) casts: handlers taking only an HttpContext would otherwise bind as RequestDelegates and drop their IResult.
        group.MapGet("/", (Delegate)api.Page).ExcludeFromDescription();   // also answers {prefix} without the slash
        group.MapGet("/assets/{name}", api.Asset).ExcludeFromDescription();
        group.MapGet("/api/pools", (Delegate)api.List);
        group.MapGet("/api/pools/{id:long}", api.Get);
        group.MapGet("/api/pools/{id:long}/holders", api.Holders);
        group.MapGet("/api/pools/{id:long}/history", api.History);

        var actions = group.MapGroup("/api/pools/{id:long}");
        if (options.ActionsPolicy is null)
        {
            foreach (var action in (string[])["clear", "pause", "resume", "drain", "resize"])
                actions.MapPost("/" + action, DashboardEndpoints.ReadOnly);
        }
        else
        {
            actions.RequireAuthorization(options.ActionsPolicy);
            actions.AddEndpointFilterFactory(guard.Filter);
            actions.MapPost("/clear", api.Clear);
            actions.MapPost("/pause", api.Pause);
            actions.MapPost("/resume", api.Resume);
            actions.MapPost("/drain", api.Drain);
            actions.MapPost("/resize", api.Resize);
        }
        return group;
    }

    // Sampling follows the host: from ApplicationStarted (at once if it already started) to ApplicationStopping.
    private static void StartWithHost(IServiceProvider services, PoolHistorySampler sampler)
    {
        var lifetime = services.GetService<IHostApplicationLifetime>();
        if (lifetime is null)
        {
            sampler.Start();
            return;
        }
        lifetime.ApplicationStarted.Register(sampler.Start);
        lifetime.ApplicationStopping.Register(sampler.Dispose);
    }
}
