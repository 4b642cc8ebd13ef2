using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Covet.Data.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>The web application under test: the dashboard at /covet, a header-driven test login, and two policies.</summary>
public sealed class TestProgram
{
    public const string AdminPolicy = "covet-admin";   // role "admin" (header X-Test-Role)
    public const string AnyonePolicy = "anyone";       // every request, signed in or not (the browser test)

    public static void Main(string[] args) => Build(args).Run();

    public static WebApplication Build(string[] args, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddAuthentication(HeaderAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, HeaderAuthentication>(HeaderAuthentication.SchemeName, null);
        builder.Services.AddAuthorization(o =>
        {
            o.AddPolicy(AdminPolicy, p => p.RequireRole("admin"));
            o.AddPolicy(AnyonePolicy, p => p.RequireAssertion(_ => true));
        });
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapCovetDashboard("/covet");   // options from services.Configure<CovetDashboardOptions>
        app.MapCovetDashboard("/ops/covet").RequireAuthorization(AdminPolicy);   // the returned group takes conventions
        return app;
    }
}

/// <summary>Signs in the user named by the X-Test-User header, with the role in X-Test-Role; anonymous without it.</summary>
public sealed class HeaderAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "TestHeader";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var user = Request.Headers["X-Test-User"].ToString();
        if (user.Length == 0)
            return Task.FromResult(AuthenticateResult.NoResult());
        var claims = new List<Claim> { new(ClaimTypes.Name, user) };
        var role = Request.Headers["X-Test-Role"].ToString();
        if (role.Length > 0)
            claims.Add(new Claim(ClaimTypes.Role, role));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName)));
    }
}

/// <summary>
/// Gives each in-memory request the remote address named by the X-Test-Remote-Ip header (127.0.0.1 without it; "none"
/// for no address), as a reverse proxy's forwarded-headers middleware would: TestServer itself sets none.
/// </summary>
public sealed class RemoteAddressStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((context, nextMiddleware) =>
        {
            var header = context.Request.Headers["X-Test-Remote-Ip"].ToString();
            context.Connection.RemoteIpAddress = header switch
            {
                "" => IPAddress.Loopback,
                "none" => null,
                _ => IPAddress.Parse(header),
            };
            return nextMiddleware(context);
        });
        next(app);
    };
}
