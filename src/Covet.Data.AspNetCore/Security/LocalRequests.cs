using System.Net;
using Covet.Data.AspNetCore.Api;
using Microsoft.AspNetCore.Http;

namespace Covet.Data.AspNetCore.Security;

/// <summary>
/// Which requests count as local, as Hangfire's LocalRequestsOnlyAuthorizationFilter decides: a loopback remote address, or a
/// remote address equal to the local one (a browser on the server itself). No remote address at all (an in-memory test
/// server, a transport that does not say) is not local: the default must fail closed.
/// </summary>
internal static class LocalRequests
{
    public static bool IsLocal(ConnectionInfo connection)
    {
        var remote = connection.RemoteIpAddress;
        if (remote is null)
            return false;
        if (IPAddress.IsLoopback(remote))
            return true;
        return connection.LocalIpAddress is { } local && remote.MapToIPv6().Equals(local.MapToIPv6());
    }

    /// <summary>An endpoint filter that answers 403 to every request that is not local.</summary>
    public static EndpointFilterDelegate Filter(EndpointFilterFactoryContext _, EndpointFilterDelegate next) => context =>
        IsLocal(context.HttpContext.Connection)
            ? next(context)
            : ValueTask.FromResult<object?>(DashboardJsonResults.Json(
                new { error = "The Covet dashboard serves local requests only (set CovetDashboardOptions.AllowRemoteRequests and require authorization to open it up)." },
                statusCode: StatusCodes.Status403Forbidden));
}
