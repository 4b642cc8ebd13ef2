using System.Security.Cryptography;
using System.Text;
using Covet.Data.AspNetCore.Api;
using Microsoft.AspNetCore.Http;

namespace Covet.Data.AspNetCore.Security;

/// <summary>
/// Cross-site request forgery protection of the dashboard's actions: a synchronizer token plus an origin check.
/// <list type="bullet">
/// <item>The page carries a token, HMAC-SHA256 over the user's name with a key drawn at random when the dashboard is mapped;
/// every POST must send it back in the <see cref="HeaderName"/> header. Another site cannot read the page (same-origin
/// policy), so it cannot learn the token; and a custom header cannot be sent cross-site without a CORS preflight.</item>
/// <item>When the browser says where the request comes from (<c>Origin</c>, <c>Sec-Fetch-Site</c>), it must be this site.</item>
/// </list>
/// Why not ASP.NET Core antiforgery: it needs the application to register it (and Data Protection keys shared across
/// instances), and its value is a token bound to a cookie; the dashboard is per process (it shows this process's pools),
/// sets no cookie of its own, and must work in an application that has neither. A per-process key is the right lifetime:
/// a restarted process invalidates open pages, which reload.
/// </summary>
internal sealed class ActionGuard
{
    public const string HeaderName = "X-Covet-Dashboard-Token";
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);

    /// <summary>The token of the request's user.</summary>
    public string TokenFor(HttpContext context) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes("covet-dashboard-actions\n" + (context.User.Identity?.Name ?? ""))));

    /// <summary>Null when the request may act; otherwise why not.</summary>
    public string? Refusal(HttpContext context)
    {
        var request = context.Request;
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase))
            return "cross-origin request refused";
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && site is not ("same-origin" or "none"))
            return "cross-site request refused";
        var sent = request.Headers[HeaderName].ToString();
        if (sent.Length == 0)
            return $"missing {HeaderName} header (reload the dashboard page)";
        var expected = TokenFor(context);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(sent), Encoding.ASCII.GetBytes(expected))
            ? null
            : $"invalid {HeaderName} header (reload the dashboard page)";
    }

    /// <summary>An endpoint filter that answers 403 to an action request that fails the checks.</summary>
    public EndpointFilterDelegate Filter(EndpointFilterFactoryContext _, EndpointFilterDelegate next) => context =>
    {
        var refusal = Refusal(context.HttpContext);
        return refusal is null
            ? next(context)
            : ValueTask.FromResult<object?>(DashboardJsonResults.Json(new { error = "Action refused: " + refusal + "." }, statusCode: StatusCodes.Status403Forbidden));
    };
}
