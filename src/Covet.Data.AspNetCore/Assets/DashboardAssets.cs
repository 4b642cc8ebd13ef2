using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Covet.Data.AspNetCore.Assets;

/// <summary>The page, script and style sheet embedded in the assembly, read once when the dashboard is mapped.</summary>
internal sealed class DashboardAssets
{
    private readonly string _page = Read("index.html");
    private readonly byte[] _script = Encoding.UTF8.GetBytes(Read("dashboard.js"));
    private readonly byte[] _styles = Encoding.UTF8.GetBytes(Read("dashboard.css"));

    // The page runs only its own script from its own origin: no inline script, no eval, no other origin to talk to,
    // and it cannot be framed (clickjacking an action button).
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    public IResult Page(HttpContext context, string basePath, string? token)
    {
        var html = _page
            .Replace("{{base}}", WebUtility.HtmlEncode(basePath), StringComparison.Ordinal)
            .Replace("{{token}}", WebUtility.HtmlEncode(token ?? ""), StringComparison.Ordinal)
            .Replace("{{actions}}", token is null ? "false" : "true", StringComparison.Ordinal);
        Secure(context.Response, noStore: true);
        return Results.Content(html, "text/html; charset=utf-8");
    }

    public IResult Asset(HttpContext context, string name)
    {
        var (body, type) = name switch
        {
            "dashboard.js" => (_script, "text/javascript; charset=utf-8"),
            "dashboard.css" => (_styles, "text/css; charset=utf-8"),
            _ => (null, null),
        };
        if (body is null)
            return Results.NotFound();
        Secure(context.Response, noStore: false);
        context.Response.Headers.CacheControl = "no-cache";
        return Results.Bytes(body, type);
    }

    public static void Secure(HttpResponse response, bool noStore)
    {
        var h = response.Headers;
        h["Content-Security-Policy"] = ContentSecurityPolicy;
        h.XContentTypeOptions = "nosniff";
        h.XFrameOptions = "DENY";
        h["Referrer-Policy"] = "no-referrer";
        if (noStore)
            h.CacheControl = "no-store";
    }

    private static string Read(string name)
    {
        using var stream = typeof(DashboardAssets).Assembly.GetManifestResourceStream("Covet.Dashboard." + name)
            ?? throw new InvalidOperationException($"The Covet dashboard's embedded resource {name} is missing from {typeof(DashboardAssets).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
