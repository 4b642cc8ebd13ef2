namespace Covet.Data.EntityFrameworkCore.Tests.Matrix;

/// <summary>The MariaDB column on Pomelo.EntityFrameworkCore.MySql 9 (MySqlConnector) and EF Core 9: every shared row.</summary>
[TestClass]
public sealed class Pomelo : MatrixTests
{
    private protected override ProviderKind Kind => ProviderKind.PomeloMySql;
}
